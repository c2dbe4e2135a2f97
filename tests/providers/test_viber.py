import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import viber
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.chat_support import (  # noqa: F401 (fixtures)
    client_fixture,
    json_shapes,
    outgoing,
    refused_port,
    request,
    server_fixture,
)

TOKEN = "test-viber-auth-token"
CONFIG = {"auth_token": TOKEN, "sender_name": "Acme Support"}
VECTOR_BODY = (
    b'{"event":"delivered","timestamp":1457764197627,"message_token":4912661846655238145,'
    b'"user_id":"01234567890A="}'
)
VECTOR_SIGNATURE = "f00998ed8263af7e1e4a0a7974e1eb44e750f75ea098418ee1d93e64d98946d8"
BIG_TOKEN = "4912661846655238145"


def signed(body):
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    signature = hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    return request(body, {"X-Viber-Content-Signature": signature})


def callback(event, **extra):
    # Built as text so the 64-bit token is written exactly as Viber writes it.
    fields = {"event": event, "timestamp": 1457764197627, "user_id": "01234567890A=", **extra}
    body = json.dumps(fields)
    return body[:-1] + f', "message_token": {BIG_TOKEN}}}'


def test_reference_vector():
    assert viber.signature(TOKEN, VECTOR_BODY) == VECTOR_SIGNATURE
    assert viber.verify(
        request(VECTOR_BODY, {"X-Viber-Content-Signature": VECTOR_SIGNATURE}), CONFIG
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Viber-Content-Signature": ""}, {"X-Viber-Content-Signature": "0" * 64}],
)
def test_forged_or_missing_signature(headers):
    assert not viber.verify(request(VECTOR_BODY, headers), CONFIG)


def test_no_auth_token_configured():
    req = request(VECTOR_BODY, {"X-Viber-Content-Signature": VECTOR_SIGNATURE})
    assert not viber.verify(req, {"auth_token": ""})


def test_delivered_keeps_the_64_bit_token_exact():
    req = request(VECTOR_BODY, {"X-Viber-Content-Signature": VECTOR_SIGNATURE})
    (update,) = viber.parse(req, CONFIG).statuses
    assert update.provider_message_id == "4912661846655238145"
    assert update.status == Status.DELIVERED
    assert update.raw_status == "delivered"
    assert update.recipient == "01234567890A="
    assert update.occurred_at == datetime(2016, 3, 12, 6, 29, 57, 627000, tzinfo=UTC)
    assert update.dedupe_key == "4912661846655238145:delivered:01234567890A="


def test_seen_is_a_read_status_and_a_watermark():
    result = viber.parse(signed(callback("seen")), CONFIG)
    (update,) = result.statuses
    assert update.status == Status.READ and update.provider_message_id == BIG_TOKEN
    (mark,) = result.watermarks
    assert mark.status == Status.READ
    assert mark.contact_address == "01234567890A="
    assert mark.up_to_provider_message_id == BIG_TOKEN
    assert mark.up_to == datetime(2016, 3, 12, 6, 29, 57, 627000, tzinfo=UTC)
    assert mark.dedupe_key != update.dedupe_key


def test_failed_carries_the_description():
    (update,) = viber.parse(signed(callback("failed", desc="failure description")), CONFIG).statuses
    assert update.status == Status.FAILED
    assert update.error_code == "delivery_failed"
    assert update.error_title == viber.ERRORS["delivery_failed"].title
    assert update.error_detail == "failure description"


def test_unknown_event_with_a_token_is_kept_unrecognized():
    (update,) = viber.parse(signed(callback("clicked_v2")), CONFIG).statuses
    assert update.status == UNRECOGNIZED
    assert update.raw_status == "clicked_v2"


def test_duplicates_have_equal_dedupe_keys_and_devices_differ():
    first = viber.parse(signed(callback("delivered")), CONFIG).statuses[0]
    again = viber.parse(signed(callback("delivered", extra_field=1)), CONFIG).statuses[0]
    assert first.dedupe_key == again.dedupe_key
    seen = viber.parse(signed(callback("seen")), CONFIG).statuses[0]
    assert seen.dedupe_key != first.dedupe_key


@pytest.mark.parametrize("event", ["webhook", "subscribed", "unsubscribed", "conversation_started"])
def test_lifecycle_events_parse_to_nothing(event):
    body = {"event": event, "timestamp": 1457764197627, "chat_hostname": "SN-123"}
    body_text = json.dumps(body)[:-1] + f', "message_token": {BIG_TOKEN}}}'
    req = signed(body_text)
    assert viber.handshake(req, CONFIG) is None
    result = viber.parse(req, CONFIG)
    assert result.statuses == [] and result.watermarks == [] and result.inbound == []


def test_inbound_message():
    body = {
        "event": "message",
        "timestamp": 1457764197627,
        "sender": {"id": "01234567890A=", "name": "John McClane", "language": "en"},
        "message": {"type": "text", "text": "a message to the service"},
    }
    body_text = json.dumps(body)[:-1] + ', "message_token": 4912661846655238999}'
    (inbound,) = viber.parse(signed(body_text), CONFIG).inbound
    assert inbound.contact_address == "01234567890A="
    assert inbound.contact_name == "John McClane"
    assert inbound.content == "a message to the service"
    assert inbound.provider_message_id == "4912661846655238999"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"nope",
        b"[1]",
        b'{"timestamp": 1}',
    ],
)
def test_malformed(body):
    with pytest.raises(MalformedPayload):
        viber.parse(signed(body), CONFIG)


# Issue #9: a readable callback about a bad message is recorded and answered 200.
@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"delivered","message_token":1.5e18,"user_id":"u"}',
        b'{"event":"delivered","message_token":null,"user_id":"u"}',
        b'{"event":"message","message_token":1}',
    ],
)
def test_malformed_callback_is_skipped_with_a_reason(body):
    result = viber.parse(signed(body), CONFIG)
    assert result.applied_count == 0
    assert [s.kind for s in result.skipped] == ["malformed"]


@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes(body):
    with contextlib.suppress(MalformedPayload):
        viber.parse(signed(body), CONFIG)


@given(json_shapes(["event", "message_token", "timestamp", "user_id", "sender", "message", "id"]))
def test_parse_arbitrary_json(body):
    with contextlib.suppress(MalformedPayload):
        viber.parse(signed(json.dumps(body)), CONFIG)


@given(st.sampled_from(["delivered", "seen", "failed"]), st.integers(2**53, 2**63 - 1))
def test_any_64_bit_token_survives(event, token):
    body = json.dumps({"event": event, "timestamp": 1, "user_id": "u"})[:-1]
    body += f', "message_token": {token}}}'
    (update,) = viber.parse(signed(body), CONFIG).statuses
    assert update.provider_message_id == str(token)


# --- send -------------------------------------------------------------------------------


def config_for(server):
    return {**CONFIG, "api_base_url": server.url}


def test_send_accepted_keeps_the_token_exact(server, client):
    body = (
        b'{"status":0,"status_message":"ok","message_token":5741311803571721087,'
        b'"chat_hostname":"SN-CHAT-05_"}'
    )
    server.queue(Reply(200, body))
    result = viber.send(client, config_for(server), outgoing(to="01234567890A="))
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.status == Status.SENT
    assert result.provider_message_id == "5741311803571721087"
    (sent,) = server.requests
    assert sent.path == "/pa/send_message"
    assert sent.headers["x-viber-auth-token"] == TOKEN
    assert sent.json() == {
        "receiver": "01234567890A=",
        "type": "text",
        "sender": {"name": "Acme Support"},
        "text": "Hello there",
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [(5, "receiverNotRegistered"), (6, "receiverNotSubscribed"), (2, "invalidAuthToken")],
)
def test_send_rejected_with_http_200(server, client, status, message):
    server.queue(Reply(200, {"status": status, "status_message": message}))
    result = viber.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == str(status)
    assert result.error_title == viber.ERRORS[str(status)].title
    assert result.error_detail == message


def test_send_too_many_requests_status_is_transient(server, client):
    server.queue(Reply(200, {"status": 12, "status_message": "tooManyRequests"}))
    result = viber.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.TRANSIENT


@pytest.mark.parametrize("status", [429, 500, 503])
def test_send_http_transient(server, client, status):
    server.queue(Reply(status, "busy", headers={"Retry-After": "4"}))
    result = viber.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.retry_after == 4


def test_send_http_4xx_is_rejected(server, client):
    server.queue(Reply(404, "not found"))
    result = viber.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "http_error"


def test_send_timeout_is_unknown(server, client):
    server.queue(Reply(200, {"status": 0, "message_token": 1}, delay=1.0))
    result = viber.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.UNKNOWN


def test_send_connection_refused(client):
    config = {**CONFIG, "api_base_url": f"http://127.0.0.1:{refused_port()}"}
    assert viber.send(client, config, outgoing()).outcome == SendOutcome.TRANSIENT
