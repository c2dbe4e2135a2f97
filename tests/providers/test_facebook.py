from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import Status
from statuses.providers import facebook
from statuses.providers.base import HandshakeReply, MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import (
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
    PAGE_ID,
    PSID,
    fb_delivery,
    fb_message,
    fb_read,
    messaging_payload,
)

CONFIG = {
    "page_id": PAGE_ID,
    "page_access_token": "test-page-token",
    "app_secret": "test_app_secret",
    "verify_token": "test-verify-token",
}
running_server, server = recording_server_fixture()


def parse(payload):
    return facebook.parse(signed_meta_request(payload), CONFIG)


def test_verify_with_the_reference_vector_and_a_signed_payload():
    body = b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}]}'
    signature = "sha256=27145d73ab3382782d68f62257bd98327912e106d9a3dc704fe8a14695d63efd"
    assert facebook.verify(make_request(body, headers={"X-Hub-Signature-256": signature}), CONFIG)
    assert facebook.verify(signed_meta_request(messaging_payload(fb_read())), CONFIG)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, {"X-Hub-Signature": "sha1=abc"}],
)
def test_verify_refuses_forged_or_missing_signatures(headers):
    assert not facebook.verify(make_request(b"{}", headers=headers), CONFIG)


def test_verify_refuses_another_apps_signature():
    body = b'{"object":"page","entry":[]}'
    request = make_request(body, headers={"X-Hub-Signature-256": hub_signature(body, "other")})
    assert not facebook.verify(request, CONFIG)


def test_handshake():
    query = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "c"}
    assert facebook.handshake(make_request(method="GET", query=query), CONFIG) == HandshakeReply(
        200, b"c"
    )
    query["hub.verify_token"] = "nope"
    assert facebook.handshake(make_request(method="GET", query=query), CONFIG).status_code == 403
    assert facebook.handshake(make_request(b"{}"), CONFIG) is None


def test_delivery_gives_a_watermark_and_a_status_per_mid():
    result = parse(messaging_payload(fb_delivery(mids=["m_1", "m_2"])))
    [watermark] = result.watermarks
    assert watermark.status == Status.DELIVERED
    assert watermark.contact_address == PSID
    assert watermark.up_to == datetime(2026, 1, 1, 0, 0, 0, 253000, tzinfo=UTC)
    assert watermark.dedupe_key == f"{PAGE_ID}:{PSID}:delivery:1767225600253"
    assert watermark.raw_status == "delivery"
    # No event timestamp on deliveries: the entry's time stands in.
    assert watermark.occurred_at == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert [(s.provider_message_id, s.status) for s in result.statuses] == [
        ("m_1", Status.DELIVERED),
        ("m_2", Status.DELIVERED),
    ]
    assert result.statuses[0].dedupe_key == "m_1:delivery"
    assert result.statuses[0].recipient == PSID


def test_delivery_without_mids_is_only_a_watermark():
    result = parse(messaging_payload(fb_delivery()))
    assert len(result.watermarks) == 1 and result.statuses == []


def test_watermarks_are_milliseconds_not_seconds():
    # Chatwoot read these as seconds and landed in the year 57,000-something.
    [watermark] = parse(messaging_payload(fb_read(watermark=1767225600999))).watermarks
    assert watermark.up_to == datetime(2026, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)
    assert watermark.up_to.year == 2026


def test_read_watermark():
    [watermark] = parse(messaging_payload(fb_read())).watermarks
    assert watermark.status == Status.READ
    assert watermark.raw_status == "read"
    assert watermark.contact_address == PSID
    assert watermark.up_to == datetime(2026, 1, 1, 0, 0, 0, 253000, tzinfo=UTC)
    assert watermark.occurred_at == datetime(2026, 1, 1, 0, 1, 40, 463000, tzinfo=UTC)
    assert watermark.dedupe_key == f"{PAGE_ID}:{PSID}:read:1767225600253"
    assert watermark.up_to_provider_message_id == ""


def test_inbound_message_and_echo():
    attachment = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1767225660000,
        "message": {"mid": "m_img", "attachments": [{"type": "image", "payload": {"url": "u"}}]},
    }
    inbound = parse(
        messaging_payload(
            fb_message(), fb_message("m_echo", "Sent from Business Suite", True), attachment
        )
    ).inbound
    message, echo, image = inbound
    assert (message.contact_address, message.provider_message_id, message.content) == (
        PSID,
        "m_in1",
        "Hello",
    )
    assert not message.is_echo
    assert message.occurred_at == datetime(2026, 1, 1, 0, 0, 50, tzinfo=UTC)
    assert echo.is_echo
    assert echo.contact_address == PSID  # the recipient of an echo is the contact
    assert image.content == "[image]"


def test_batch_of_entries_and_events_all_returned():
    payload = messaging_payload(fb_delivery(mids=["m_1"]), fb_read(), fb_message())
    payload["entry"].append(
        {
            "id": PAGE_ID,
            "time": 1767225600500,
            "messaging": [fb_read(watermark=1767225600400), fb_delivery(watermark=1767225600300)],
        }
    )
    result = parse(payload)
    assert len(result.watermarks) == 4
    assert len(result.statuses) == 1
    assert len(result.inbound) == 1
    assert len({w.dedupe_key for w in result.watermarks}) == 4


def test_unknown_events_are_ignored():
    event = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1,
        "reaction": {"mid": "m_1", "action": "react", "emoji": "x"},
    }
    result = parse(messaging_payload(event))
    assert (result.statuses, result.watermarks, result.inbound) == ([], [], [])


def test_timestamps_fall_back_to_arrival():
    payload = {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [fb_delivery()]}]}
    assert parse(payload).watermarks[0].occurred_at == RECEIVED_AT


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{{",
        b"[]",
        b'{"entry": 1}',
    ],
)
def test_malformed_bodies(body):
    with pytest.raises(MalformedPayload):
        facebook.parse(make_request(body), CONFIG)


# Issue #9: a bad entry of a readable body is recorded and skipped, never the whole body.
@pytest.mark.parametrize(
    "body",
    [
        b'{"entry": [{"messaging": {}}]}',
        b'{"entry": [{"messaging": ["x"]}]}',
        b'{"entry": [{"messaging": [{"sender": {"id": "1"}, "delivery": {"watermark": "soon"}}]}]}',
        b'{"entry": [{"messaging": [{"sender": {"id": "1"}, "read": {}}]}]}',
        b'{"entry": [{"messaging": [{"sender": {"id": "1"}, "read": {"watermark": 1e300}}]}]}',
        b'{"entry": [{"messaging": [{"sender": {"id": "1"}, "message": {"text": "no mid"}}]}]}',
        b'{"entry": [{"messaging": [{"sender": "psid", "read": {"watermark": 1}}]}]}',
        b'{"entry": [{"messaging": [{"read": {"watermark": 1}}]}]}',
    ],
)
def test_malformed_entries_are_skipped_with_a_reason(body):
    result = facebook.parse(make_request(body), CONFIG)
    assert result.applied_count == 0
    (skipped,) = result.skipped
    assert skipped.kind == "malformed" and skipped.reason


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_malformed(body):
    parse_or_malformed(facebook, make_request(body), CONFIG)


@fuzz
@given(json_values)
def test_arbitrary_events_only_raise_malformed(event):
    parse_or_malformed(facebook, make_request(messaging_payload(event)), CONFIG)


@fuzz
@given(
    st.dictionaries(
        st.sampled_from(["delivery", "read", "message", "sender", "timestamp"]), json_values
    )
)
def test_arbitrary_event_fields_only_raise_malformed(event):
    parse_or_malformed(facebook, make_request(messaging_payload(event)), CONFIG)


def send(server, message=None, **config):
    with httpx.Client(timeout=2) as client:
        return facebook.send(
            client, {**CONFIG, "api_base_url": server.url, **config}, message or outgoing(to=PSID)
        )


def test_send_accepted(server):
    server.queue(Reply(200, {"recipient_id": PSID, "message_id": "m_out1"}))
    result = send(server)
    assert (result.outcome, result.provider_message_id) == (SendOutcome.ACCEPTED, "m_out1")
    [request] = server.requests
    assert request.path == "/v21.0/me/messages"
    assert request.query == {"access_token": ["test-page-token"]}
    assert request.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello there"},
    }


def test_send_template_is_a_tagged_message(server):
    server.queue(
        Reply(200, {"recipient_id": PSID, "message_id": "m_out2"}),
        Reply(200, {"recipient_id": PSID, "message_id": "m_out3"}),
    )
    send(server, outgoing(to=PSID, content="Your order shipped", template={}), api_version="v22.0")
    send(server, outgoing(to=PSID, template={"tag": "ACCOUNT_UPDATE", "text": "Password changed"}))
    first, second = server.requests
    assert first.path == "/v22.0/me/messages"
    # An empty template dict is no template at all.
    assert first.json()["messaging_type"] == "RESPONSE"
    assert second.json() == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "ACCOUNT_UPDATE",
        "message": {"text": "Password changed"},
    }


def test_send_structured_template_defaults_to_human_agent(server):
    server.queue(Reply(200, {"recipient_id": PSID, "message_id": "m_out4"}))
    payload = {"template_type": "button", "text": "Need help?", "buttons": []}
    send(server, outgoing(to=PSID, template={"payload": payload}))
    assert server.requests[0].json() == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"attachment": {"type": "template", "payload": payload}},
    }


def test_send_rejected_outside_the_window(server):
    error = {
        "error": {
            "message": "(#10) This message is sent outside of allowed window.",
            "type": "OAuthException",
            "code": 10,
            "error_subcode": 2018278,
            "fbtrace_id": "Hx1",
        }
    }
    server.queue(Reply(400, error))
    result = send(server)
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "10/2018278"
    assert result.error_title == "(#10) This message is sent outside of allowed window."
    assert facebook.ERRORS[result.error_code].title == "Outside the allowed messaging window"


def test_send_rate_limited_by_code_is_transient(server):
    server.queue(Reply(400, {"error": {"message": "(#613) Calls limit", "code": 613}}))
    assert send(server).outcome == SendOutcome.TRANSIENT


def test_error_catalogue_covers_the_reference():
    for code in ["2", "4", "10", "10/2018278", "100", "100/2018001", "190", "551", "613"]:
        assert facebook.ERRORS[code].title
