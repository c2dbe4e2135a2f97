import json
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses import machine
from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import whatsapp_cloud
from statuses.providers.base import HandshakeReply, MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import (
    CORRELATION_ID,
    RECEIVED_AT,
    fuzz,
    hub_signature,
    json_values,
    make_request,
    outgoing,
    parse_or_malformed,
    recording_server_fixture,
    signed_meta_request,
)
from tests.providers.meta_payloads import (
    PHONE_NUMBER_ID,
    WAMID,
    wa_payload,
    wa_status,
    wa_text_message,
    wa_value,
)

CONFIG = {
    "phone_number_id": PHONE_NUMBER_ID,
    "access_token": "test-access-token",
    "app_secret": "test_app_secret",
    "verify_token": "test-verify-token",
}
running_server, server = recording_server_fixture()


def parse(payload):
    return whatsapp_cloud.parse(signed_meta_request(payload), CONFIG)


# --- verify ---------------------------------------------------------------------------------

REFERENCE_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}]}'
)
REFERENCE_SIGNATURE = "sha256=27145d73ab3382782d68f62257bd98327912e106d9a3dc704fe8a14695d63efd"


def test_reference_vector():
    assert hub_signature(REFERENCE_BODY, "test_app_secret") == REFERENCE_SIGNATURE
    request = make_request(REFERENCE_BODY, headers={"X-Hub-Signature-256": REFERENCE_SIGNATURE})
    assert whatsapp_cloud.verify(request, CONFIG)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": REFERENCE_SIGNATURE[:-1] + "0"},
        {"X-Hub-Signature-256": REFERENCE_SIGNATURE.removeprefix("sha256=")},
        {"X-Hub-Signature-256": hub_signature(REFERENCE_BODY, "other_secret")},
        {"X-Hub-Signature": "sha1=0000"},
        {"X-Hub-Signature-256": "sha256=ünïcödé"},
    ],
)
def test_forged_or_missing_signature_is_refused(headers):
    assert not whatsapp_cloud.verify(make_request(REFERENCE_BODY, headers=headers), CONFIG)


def test_signature_covers_the_raw_bytes():
    request = make_request(
        REFERENCE_BODY + b" ", headers={"X-Hub-Signature-256": REFERENCE_SIGNATURE}
    )
    assert not whatsapp_cloud.verify(request, CONFIG)


def test_escaped_unicode_body_is_verified_as_sent():
    body = b'{"entry":[],"name":"Jos\\u00e9"}'  # Meta escapes non-ASCII; never re-serialise
    request = make_request(body, headers={"X-Hub-Signature-256": hub_signature(body, "s")})
    assert whatsapp_cloud.verify(request, {"app_secret": "s"})


@pytest.mark.parametrize("config", [{}, {"app_secret": ""}, {"app_secret": None}])
def test_missing_secret_never_verifies(config):
    request = make_request(REFERENCE_BODY, headers={"X-Hub-Signature-256": REFERENCE_SIGNATURE})
    assert not whatsapp_cloud.verify(request, config)


# --- handshake ------------------------------------------------------------------------------


def hub_get(**query):
    return make_request(method="GET", query=query)


def test_handshake_answers_the_challenge():
    reply = whatsapp_cloud.handshake(
        hub_get(
            **{
                "hub.mode": "subscribe",
                "hub.verify_token": "test-verify-token",
                "hub.challenge": "1158201444",
            }
        ),
        CONFIG,
    )
    assert reply == HandshakeReply(200, b"1158201444")


@pytest.mark.parametrize(
    "query, config",
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, CONFIG),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, CONFIG),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token"}, CONFIG),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, {}),
    ],
)
def test_handshake_with_a_wrong_token_is_forbidden(query, config):
    assert whatsapp_cloud.handshake(hub_get(**query), config) == HandshakeReply(403)


def test_handshake_without_challenge_is_a_bad_request():
    query = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token"}
    assert whatsapp_cloud.handshake(hub_get(**query), CONFIG).status_code == 400


def test_not_a_handshake():
    assert whatsapp_cloud.handshake(make_request(REFERENCE_BODY), CONFIG) is None
    assert whatsapp_cloud.handshake(hub_get(), CONFIG) is None


# --- parse: statuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("read", Status.READ),
        ("played", Status.READ),
        ("failed", Status.FAILED),
        ("deleted", UNRECOGNIZED),
        ("warning", UNRECOGNIZED),
        ("teleported", UNRECOGNIZED),
    ],
)
def test_every_status_value_is_mapped(raw, expected):
    [update] = parse(wa_payload(wa_value([wa_status(status=raw)]))).statuses
    assert update.status == expected
    assert update.raw_status == raw
    assert update.dedupe_key == f"{WAMID}:{raw}"


def test_status_fields():
    status = wa_status(
        status="sent",
        biz_opaque_callback_data=CORRELATION_ID,
        pricing={"billable": False, "pricing_model": "PMP", "category": "service"},
        some_field_from_2027={"x": 1},
    )
    result = parse(wa_payload(wa_value([status])))
    [update] = result.statuses
    assert update.provider_message_id == WAMID
    assert update.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert update.occurred_at.tzinfo is not None
    assert update.correlation_id == CORRELATION_ID
    assert update.recipient == "16505076520"
    assert update.raw == status
    assert update.error_code == ""
    assert result.inbound == [] and result.watermarks == []


def test_failed_status_keeps_the_error():
    error = {
        "code": 131049,
        "title": "This message was not delivered to maintain healthy ecosystem engagement.",
        "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        "error_data": {
            "details": "In order to maintain a healthy ecosystem engagement, the message "
            "failed to be delivered."
        },
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }
    status = wa_status(status="failed", timestamp="1767225702", errors=[error])
    [update] = parse(wa_payload(wa_value([status]))).statuses
    assert update.status == Status.FAILED
    assert update.error_code == "131049"
    assert update.error_title == error["title"]
    assert update.error_detail == error["error_data"]["details"]
    assert update.raw["errors"] == [error]


def test_failed_status_with_only_a_code_takes_the_catalogue_title():
    status = wa_status(status="failed", errors=[{"code": 131026}])
    [update] = parse(wa_payload(wa_value([status]))).statuses
    assert update.error_title == whatsapp_cloud.ERRORS["131026"].title


def test_missing_timestamp_falls_back_to_arrival():
    status = wa_status()
    del status["timestamp"]
    [update] = parse(wa_payload(wa_value([status]))).statuses
    assert update.occurred_at == RECEIVED_AT


def test_every_item_of_a_batch_is_returned():
    def value(entry, change):
        return wa_value(
            [
                wa_status(f"wamid.{entry}{change}{n}", status)
                for n, status in enumerate(["sent", "delivered", "read"])
            ]
        )

    payload = wa_payload(entries=[[value(e, c) for c in range(2)] for e in range(2)])
    statuses = parse(payload).statuses
    assert len(statuses) == 12
    assert len({s.dedupe_key for s in statuses}) == 12
    assert [s.provider_message_id for s in statuses][:3] == ["wamid.000", "wamid.001", "wamid.002"]


def test_other_webhook_fields_are_skipped():
    payload = wa_payload(wa_value([wa_status()]))
    payload["entry"][0]["changes"].append(
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}
    )
    assert len(parse(payload).statuses) == 1


def test_system_errors_are_ignored():
    errors = [
        {
            "code": 130429,
            "title": "Rate limit hit",
            "message": "Rate limit hit",
            "error_data": {"details": "Cloud API message throughput has been reached."},
        }
    ]
    result = parse(wa_payload(wa_value(errors=errors)))
    assert result.statuses == [] and result.inbound == []


# --- group messages ---------------------------------------------------------------------------


def group_status(status, participant, **extra):
    return wa_status(
        status=status,
        recipient_id="120363040000000000@g.us",
        recipient_type="group",
        recipient_participant_id=participant,
        **extra,
    )


def test_group_participants_are_separate_events():
    statuses = parse(
        wa_payload(wa_value([group_status("delivered", "111"), group_status("delivered", "222")]))
    ).statuses
    assert [s.status for s in statuses] == [Status.DELIVERED, Status.DELIVERED]
    assert [s.dedupe_key for s in statuses] == [f"{WAMID}:delivered:111", f"{WAMID}:delivered:222"]
    assert [s.recipient for s in statuses] == ["111", "222"]


def test_one_participant_failing_does_not_fail_the_group_message():
    error = {"code": 131026, "title": "Message undeliverable"}
    statuses = parse(
        wa_payload(
            wa_value(
                [
                    group_status("sent", "111", timestamp="1767225600"),
                    group_status("failed", "222", timestamp="1767225601", errors=[error]),
                ]
            )
        )
    ).statuses
    failed = statuses[1]
    assert failed.status == UNRECOGNIZED
    assert (failed.raw_status, failed.error_code) == ("failed", "131026")
    merged = machine.merge(machine.Event(s.status, s.occurred_at) for s in statuses)
    assert merged.status == Status.SENT


def test_a_group_message_failing_as_a_whole_fails():
    status = wa_status(status="failed", recipient_type="group", errors=[{"code": 131000}])
    [update] = parse(wa_payload(wa_value([status]))).statuses
    assert update.status == Status.FAILED


# --- parse: inbound ---------------------------------------------------------------------------


def test_inbound_text_message():
    contacts = [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16505076520"}]
    [message] = parse(wa_payload(wa_value(messages=[wa_text_message()], contacts=contacts))).inbound
    assert message.contact_address == "+16505076520"
    assert message.provider_message_id == "wamid.IN1"
    assert message.content == "Hi!"
    assert message.contact_name == "Kerry Fisher"
    assert message.occurred_at == datetime(2025, 12, 31, 23, 58, 20, tzinfo=UTC)
    assert not message.is_echo


@pytest.mark.parametrize(
    "extra, content",
    [
        ({"type": "image", "image": {"id": "1", "mime_type": "image/jpeg"}}, "[image]"),
        ({"type": "image", "image": {"id": "1", "caption": "look"}}, "[image] look"),
        ({"type": "button", "button": {"text": "Yes", "payload": "Y"}}, "Yes"),
        (
            {
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": {"id": "b", "title": "OK"}},
            },
            "OK",
        ),
        ({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}, "👍"),
        ({"type": "unsupported", "errors": [{"code": 131051}]}, "[unsupported]"),
        ({}, "[unknown]"),
    ],
)
def test_inbound_non_text_messages_get_a_placeholder(extra, content):
    message = {"from": "16505076520", "id": "wamid.IN2", "timestamp": "1767225500", **extra}
    [inbound] = parse(wa_payload(wa_value(messages=[message]))).inbound
    assert inbound.content == content


def test_statuses_and_messages_in_one_delivery():
    result = parse(wa_payload(wa_value([wa_status()], messages=[wa_text_message()])))
    assert len(result.statuses) == 1 and len(result.inbound) == 1


# --- parse: malformed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b'"entry"',
        b'{"entry": {}}',
    ],
)
def test_malformed_bodies(body):
    with pytest.raises(MalformedPayload):
        whatsapp_cloud.parse(make_request(body), CONFIG)


# Issue #9: a bad entry of a readable body is recorded and skipped, never the whole body.
@pytest.mark.parametrize(
    "body",
    [
        b'{"entry": [1]}',
        b'{"entry": [{"changes": [{"field": "messages", "value": []}]}]}',
        json.dumps(wa_payload(wa_value(["not an object"]))).encode(),
        json.dumps(wa_payload(wa_value([{"status": "sent", "timestamp": "1"}]))).encode(),
        json.dumps(wa_payload(wa_value([wa_status(timestamp="yesterday")]))).encode(),
        json.dumps(wa_payload(wa_value([wa_status(timestamp="9" * 30)]))).encode(),
        json.dumps(wa_payload(wa_value(messages=[{"id": "x", "type": "text"}]))).encode(),
    ],
)
def test_malformed_entries_are_skipped_with_a_reason(body):
    result = whatsapp_cloud.parse(make_request(body), CONFIG)
    assert result.applied_count == 0
    (skipped,) = result.skipped
    assert skipped.kind == "malformed" and skipped.reason


def test_empty_envelope_is_fine():
    assert parse({"object": "whatsapp_business_account", "entry": []}).statuses == []


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_malformed(body):
    parse_or_malformed(whatsapp_cloud, make_request(body), CONFIG)


@fuzz
@given(json_values)
def test_arbitrary_json_values_in_a_change_only_raise_malformed(value):
    payload = wa_payload(wa_value([wa_status()]))
    payload["entry"][0]["changes"].append({"field": "messages", "value": {"statuses": [value]}})
    parse_or_malformed(whatsapp_cloud, make_request(json.dumps(payload)), CONFIG)


@fuzz
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "status",
                "timestamp",
                "recipient_type",
                "recipient_participant_id",
                "errors",
                "biz_opaque_callback_data",
            ]
        ),
        json_values,
    )
)
def test_arbitrary_status_objects_only_raise_malformed(fields):
    parse_or_malformed(whatsapp_cloud, make_request(wa_payload(wa_value([fields]))), CONFIG)


# --- send -------------------------------------------------------------------------------------

SENT_RESPONSE = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "16505076520", "wa_id": "16505076520"}],
    "messages": [{"id": WAMID, "message_status": "accepted"}],
}
REJECTED_RESPONSE = {
    "error": {
        "message": "(#131047) Re-engagement message",
        "type": "OAuthException",
        "code": 131047,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Message failed to send because more than 24 hours have passed since the "
            "customer last replied to this number.",
        },
        "fbtrace_id": "AbCdEfGhIjKlMnOp",
    }
}


def send(server, message=None, **config):
    with httpx.Client(timeout=2) as client:
        return whatsapp_cloud.send(
            client, {**CONFIG, "api_base_url": server.url, **config}, message or outgoing()
        )


def test_send_text_accepted(server):
    server.queue(Reply(200, SENT_RESPONSE))
    result = send(server)
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id == WAMID
    assert result.status == "sent"
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == "Bearer test-access-token"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505076520",
        "type": "text",
        "text": {"body": "Hello there"},
        "biz_opaque_callback_data": CORRELATION_ID,
    }


def test_send_template_with_configured_api_version(server):
    server.queue(Reply(200, SENT_RESPONSE))
    template = {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
    }
    send(server, outgoing(template=template, content=""), api_version="v23.0")
    [request] = server.requests
    assert request.path == f"/v23.0/{PHONE_NUMBER_ID}/messages"
    body = request.json()
    assert body["type"] == "template"
    assert body["template"] == template
    assert "text" not in body
    assert body["biz_opaque_callback_data"] == CORRELATION_ID


def test_send_template_language_as_a_string(server):
    server.queue(Reply(200, SENT_RESPONSE))
    send(server, outgoing(template={"name": "hello_world", "language": "en_US"}))
    assert server.requests[0].json()["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


def test_send_rejected_with_the_providers_error(server):
    server.queue(Reply(400, REJECTED_RESPONSE))
    result = send(server)
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "131047"
    assert result.error_title == "(#131047) Re-engagement message"
    assert result.error_detail.startswith("Message failed to send because more than 24 hours")
    assert result.raw == REJECTED_RESPONSE


def test_send_rejected_with_only_a_code_takes_the_catalogue_title(server):
    server.queue(Reply(400, {"error": {"code": 133010}}))
    result = send(server)
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_title == whatsapp_cloud.ERRORS["133010"].title


def test_send_pair_rate_limit_is_transient(server):
    server.queue(
        Reply(400, {"error": {"message": "(#131056) Pair rate limit hit", "code": 131056}})
    )
    result = send(server)
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error_code == "131056"


def test_send_without_config_is_rejected_without_a_request(server):
    with httpx.Client() as client:
        result = whatsapp_cloud.send(client, {"api_base_url": server.url}, outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "misconfigured"
    assert server.requests == []


def test_error_catalogue_covers_the_reference():
    for code in [
        "131026",
        "131047",
        "131049",
        "131050",
        "131051",
        "130472",
        "131000",
        "131048",
        "131056",
        "130429",
        "131052",
        "131053",
        "131042",
        "131031",
        "132000",
        "132001",
        "132015",
        "132016",
        "133010",
        "368",
    ]:
        info = whatsapp_cloud.ERRORS[code]
        assert info.title and info.explanation and info.hint
