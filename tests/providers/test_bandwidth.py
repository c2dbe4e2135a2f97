import base64
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import bandwidth
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import (
    CORRELATION_ID,
    RECEIVED_AT,
    fuzz,
    json_values,
    make_request,
    outgoing,
    parse_or_malformed,
    recording_server_fixture,
)

CONFIG = {
    "account_id": "9900000",
    "application_id": "cfd4fb83-7531-4acc-b471-42d0bb76a65c",
    "username": "api-user",
    "password": "api-password",
    "from_number": "+15552221111",
    "callback_username": "tickmark",
    "callback_password": "callback-s3cret",
}
MESSAGE_ID = "1767225600123xo7watq5px6rbe5d"
running_server, server = recording_server_fixture()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def event(kind="message-delivered", **extra):
    return {
        "type": kind,
        "time": "2026-08-12T15:30:16Z",
        "description": "ok",
        "to": "+15554443333",
        "message": {
            "id": MESSAGE_ID,
            "owner": "+15552221111",
            "applicationId": CONFIG["application_id"],
            "time": "2026-08-12T15:30:15.876Z",
            "segmentCount": 1,
            "direction": "out",
            "to": ["+15554443333"],
            "from": "+15552221111",
            "text": "",
            "tag": CORRELATION_ID,
        },
        **extra,
    }


def parse(*events):
    return bandwidth.parse(make_request(list(events)), CONFIG)


# --- verify ---------------------------------------------------------------------------------


def test_verify_basic_credentials():
    request = make_request(
        [event()], headers={"Authorization": basic("tickmark", "callback-s3cret")}
    )
    assert bandwidth.verify(request, CONFIG)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        basic("tickmark", "wrong"),
        basic("someone", "callback-s3cret"),
        basic("tickmark", "callback-s3cret2"),
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"tickmarkcallback-s3cret").decode(),
        "Basic ünï",
    ],
)
def test_verify_refuses_wrong_or_missing_credentials(authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert not bandwidth.verify(make_request(b"[]", headers=headers), CONFIG)


def test_verify_without_configured_credentials():
    request = make_request(b"[]", headers={"Authorization": basic("", "")})
    assert not bandwidth.verify(request, {})


def test_no_handshake():
    assert bandwidth.handshake(make_request(b"[]"), CONFIG) is None


# --- parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("message-sending", Status.SENT),
        ("message-sent", Status.SENT),
        ("message-delivered", Status.DELIVERED),
        ("message-failed", Status.FAILED),
        ("message-read", Status.READ),
        ("message-teleported", UNRECOGNIZED),
    ],
)
def test_every_type_is_mapped(kind, expected):
    [update] = parse(event(kind)).statuses
    assert (update.status, update.raw_status) == (expected, kind)


def test_status_fields():
    [update] = parse(event()).statuses
    assert update.provider_message_id == MESSAGE_ID
    assert update.occurred_at == datetime(2026, 8, 12, 15, 30, 16, tzinfo=UTC)
    assert update.dedupe_key == f"{MESSAGE_ID}:message-delivered"
    assert update.correlation_id == CORRELATION_ID
    assert update.recipient == "+15554443333"
    assert update.error_code == ""


def test_failed_carries_the_error():
    [update] = parse(
        event("message-failed", description="rejected-unallocated-to-number", errorCode=4406)
    ).statuses
    assert update.status == Status.FAILED
    assert update.error_code == "4406"
    assert update.error_title == bandwidth.ERRORS["4406"].title
    assert update.error_detail == "rejected-unallocated-to-number"
    assert update.dedupe_key == f"{MESSAGE_ID}:message-failed:4406"


def test_failed_with_an_unknown_code_uses_the_description():
    [update] = parse(
        event("message-failed", description="some-new-reason", errorCode=4999)
    ).statuses
    assert (update.error_code, update.error_title) == ("4999", "some-new-reason")


def test_read_uses_the_event_time():
    [update] = parse(event("message-read", eventTime="2026-08-12T17:00:00.250+02:00")).statuses
    assert update.occurred_at == datetime(2026, 8, 12, 15, 0, 0, 250000, tzinfo=UTC)


def test_time_without_zone_is_utc_and_missing_time_is_arrival():
    [naive] = parse(event(time="2026-08-12T15:30:16")).statuses
    assert naive.occurred_at == datetime(2026, 8, 12, 15, 30, 16, tzinfo=UTC)
    missing = event()
    del missing["time"]
    assert parse(missing).statuses[0].occurred_at == RECEIVED_AT


def test_batch_all_returned():
    events = [event("message-sending"), event("message-delivered")]
    other = event("message-failed", errorCode=4720)
    other["message"] = {**other["message"], "id": "other-id", "tag": ""}
    result = parse(*events, other, event("message-delivered"))
    assert len(result.statuses) == 4
    assert result.statuses[2].provider_message_id == "other-id"
    assert result.statuses[2].correlation_id == ""


def test_inbound_message():
    inbound = {
        "type": "message-received",
        "time": "2026-08-12T15:31:00Z",
        "description": "Incoming message received",
        "to": "+15552221111",
        "message": {
            "id": "in-1",
            "time": "2026-08-12T15:31:00Z",
            "to": ["+15552221111"],
            "from": "+15554443333",
            "text": "Thanks!",
            "applicationId": CONFIG["application_id"],
            "owner": "+15552221111",
            "direction": "in",
            "segmentCount": 1,
        },
    }
    result = parse(inbound)
    assert result.statuses == []
    [message] = result.inbound
    assert (message.contact_address, message.provider_message_id, message.content) == (
        "+15554443333",
        "in-1",
        "Thanks!",
    )
    assert message.occurred_at == datetime(2026, 8, 12, 15, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"type": "message-delivered"}',
    ],
)
def test_malformed_bodies(body):
    with pytest.raises(MalformedPayload):
        bandwidth.parse(make_request(body), CONFIG)


# Issue #9: a bad event of a readable array is recorded and skipped, never the whole array.
@pytest.mark.parametrize(
    "body",
    [
        b"[1]",
        b'[{"type": "message-delivered"}]',
        b'[{"type": "message-delivered", "message": {}}]',
        b'[{"message": {"id": "x"}}]',
        b'[{"type": "message-delivered", "time": "yesterday", "message": {"id": "x"}}]',
        b'[{"type": "message-delivered", "time": 5, "message": {"id": "x"}}]',
        b'[{"type": "message-received", "message": {"id": "x"}}]',
    ],
)
def test_malformed_events_are_skipped_with_a_reason(body):
    result = bandwidth.parse(make_request(body), CONFIG)
    assert result.applied_count == 0
    assert [s.kind for s in result.skipped] == ["malformed"]


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_malformed(body):
    parse_or_malformed(bandwidth, make_request(body), CONFIG)


@fuzz
@given(
    st.dictionaries(
        st.sampled_from(["type", "time", "eventTime", "errorCode", "to", "description", "message"]),
        json_values,
    )
)
def test_arbitrary_events_only_raise_malformed(fields):
    parse_or_malformed(bandwidth, make_request([{**event(), **fields}]), CONFIG)


# --- send -----------------------------------------------------------------------------------


def send(server, message=None, **config):
    with httpx.Client(timeout=2) as client:
        return bandwidth.send(
            client, {**CONFIG, "api_base_url": server.url, **config}, message or outgoing()
        )


def test_send_accepted(server):
    server.queue(Reply(202, {"id": MESSAGE_ID, "owner": "+15552221111", "direction": "out"}))
    result = send(server)
    assert (result.outcome, result.provider_message_id, result.status) == (
        SendOutcome.ACCEPTED,
        MESSAGE_ID,
        "sent",
    )
    [request] = server.requests
    assert request.path == "/api/v2/users/9900000/messages"
    assert request.headers["authorization"] == basic("api-user", "api-password")
    assert request.json() == {
        "applicationId": CONFIG["application_id"],
        "to": ["+16505076520"],
        "from": "+15552221111",
        "text": "Hello there",
        "tag": CORRELATION_ID,
    }


def test_send_rejected_with_bandwidths_error(server):
    error = {
        "type": "request-validation",
        "description": "Your request could not be accepted",
        "fieldErrors": [
            {
                "fieldName": "to",
                "description": "'+1555' must be replaced with a "
                "valid E164 formatted telephone number",
            }
        ],
    }
    server.queue(Reply(400, error))
    result = send(server)
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "request-validation"
    assert result.error_title == bandwidth.ERRORS["request-validation"].title
    assert result.error_detail.startswith("Your request could not be accepted; to: '+1555'")
    assert result.raw == error


def test_send_queue_full_is_transient(server):
    server.queue(
        Reply(
            429,
            {"type": "max-message-queue-size-exceeded", "description": "queue full"},
            headers={"Retry-After": "60"},
        )
    )
    result = send(server)
    assert (result.outcome, result.retry_after, result.error_code) == (
        SendOutcome.TRANSIENT,
        60.0,
        "max-message-queue-size-exceeded",
    )


def test_send_forbidden_is_rejected(server):
    server.queue(Reply(403, {"type": "forbidden", "description": "Access is denied"}))
    result = send(server)
    assert (result.outcome, result.error_code, result.error_title) == (
        SendOutcome.REJECTED,
        "forbidden",
        "Access is denied",
    )


def test_error_catalogue_covers_the_reference():
    for code in [
        "4301",
        "4302",
        "4303",
        "4360",
        "4403",
        "4404",
        "4405",
        "4406",
        "4410",
        "4432",
        "4470",
        "4481",
        "4482",
        "4700",
        "4720",
        "4721",
        "4750",
        "4770",
        "4795",
        "9902",
    ]:
        assert bandwidth.ERRORS[code].title
    assert not bandwidth.ERRORS["9902"].permanent
