import base64
import contextlib
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import Status
from statuses.providers import line
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.chat_support import (  # noqa: F401 (fixtures)
    CORRELATION_ID,
    client_fixture,
    json_shapes,
    outgoing,
    refused_port,
    request,
    server_fixture,
)

SECRET = "test_channel_secret"
CONFIG = {"channel_access_token": "line-access-token", "channel_secret": SECRET}
VECTOR_BODY = b'{"destination":"U00000000000000000000000000000000","events":[]}'
VECTOR_SIGNATURE = "8BnrnB9ZR2DkR6H65eHG/THnnFpB2PpL7rOGjiuchNA="

MESSAGE_EVENT = {
    "destination": "U00000000000000000000000000000000",
    "events": [
        {
            "type": "message",
            "mode": "active",
            "timestamp": 1767225600123,
            "webhookEventId": "01JGHEXAMPLE0000000000000",
            "deliveryContext": {"isRedelivery": False},
            "replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
            "source": {"type": "user", "userId": "U4af4980629f1e2f5d0f8e2b8f8a8b8c8"},
            "message": {"id": "468789577898262530", "type": "text", "text": "Hello!"},
        }
    ],
}


def signed(body):
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return request(body, {"x-line-signature": base64.b64encode(digest).decode()})


def test_reference_vector():
    assert line.signature(SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert line.verify(request(VECTOR_BODY, {"X-Line-Signature": VECTOR_SIGNATURE}), CONFIG)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Line-Signature": ""},
        {"X-Line-Signature": "8BnrnB9ZR2DkR6H65eHG/THnnFpB2PpL7rOGjiuchNB="},
        {"X-Line-Signature": "not base64 ☃"},
    ],
)
def test_forged_or_missing_signature(headers):
    assert not line.verify(request(VECTOR_BODY, headers), CONFIG)


def test_signature_of_another_body_is_refused():
    other = VECTOR_BODY.replace(b"[]", b"[ ]")
    assert not line.verify(request(other, {"X-Line-Signature": VECTOR_SIGNATURE}), CONFIG)


def test_no_secret_configured():
    assert not line.verify(request(VECTOR_BODY, {"X-Line-Signature": VECTOR_SIGNATURE}), {})


def test_verification_request_is_not_a_handshake_and_parses_to_nothing():
    req = request(VECTOR_BODY, {"X-Line-Signature": VECTOR_SIGNATURE})
    assert line.handshake(req, CONFIG) is None
    result = line.parse(req, CONFIG)
    assert result.statuses == [] and result.watermarks == [] and result.inbound == []


def test_parse_text_message():
    (inbound,) = line.parse(signed(MESSAGE_EVENT), CONFIG).inbound
    assert inbound.contact_address == "U4af4980629f1e2f5d0f8e2b8f8a8b8c8"
    assert inbound.provider_message_id == "468789577898262530"
    assert inbound.content == "Hello!"
    assert inbound.occurred_at == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)


def test_redelivered_event_gives_the_same_inbound_message():
    again = json.loads(json.dumps(MESSAGE_EVENT))
    again["events"][0]["deliveryContext"]["isRedelivery"] = True
    first = line.parse(signed(MESSAGE_EVENT), CONFIG).inbound
    assert line.parse(signed(again), CONFIG).inbound == first


def test_group_message_and_sticker():
    event = json.loads(json.dumps(MESSAGE_EVENT))
    event["events"][0]["source"] = {"type": "group", "groupId": "Cgroup1", "userId": "Uabc"}
    event["events"][0]["message"] = {"id": "1", "type": "sticker", "packageId": "1"}
    (inbound,) = line.parse(signed(event), CONFIG).inbound
    assert inbound.contact_address == "Cgroup1"
    assert inbound.content == "[sticker]"


def test_other_events_are_ignored():
    body = {
        "destination": "U0",
        "events": [
            {"type": "follow", "timestamp": 1, "source": {"type": "user", "userId": "U1"}},
            {"type": "unfollow", "timestamp": 1, "source": {"type": "user", "userId": "U1"}},
            {"type": "delivery", "delivery": {"data": "hash"}, "timestamp": 1},
            {"type": "brand_new_event", "extra": {"x": 1}},
        ],
    }
    result = line.parse(signed(body), CONFIG)
    assert result.inbound == [] and result.statuses == []
    # Recorded, not dropped without a trace (issue #9): follow/unfollow are consent events.
    assert [s.kind for s in result.skipped] == ["consent", "consent", "ignored", "ignored"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"events": {}}'],
)
def test_malformed(body):
    with pytest.raises(MalformedPayload):
        line.parse(signed(body), CONFIG)


@pytest.mark.parametrize("body", [b'{"events": [1]}', b'{"events":[{"type":"message"}]}'])
def test_malformed_event_is_skipped_with_a_reason(body):
    result = line.parse(signed(body), CONFIG)
    assert result.applied_count == 0
    assert [s.kind for s in result.skipped] == ["malformed"]


@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes(body):
    with contextlib.suppress(MalformedPayload):
        line.parse(signed(body), CONFIG)


@given(json_shapes(["events", "type", "message", "source", "userId", "id", "timestamp"]))
def test_parse_arbitrary_json(body):
    with contextlib.suppress(MalformedPayload):
        line.parse(signed(json.dumps(body)), CONFIG)


# --- send -------------------------------------------------------------------------------


def config_for(server):
    return {**CONFIG, "api_base_url": server.url}


def test_retry_key_is_a_stable_uuid_per_attempt():
    key = line.retry_key(CORRELATION_ID)
    assert uuid.UUID(key)
    assert key == line.retry_key(CORRELATION_ID)
    assert key != line.retry_key(CORRELATION_ID[:-1] + "2")


def test_send_accepted_counts_as_delivered(server, client):
    server.queue(Reply(200, {"sentMessages": [{"id": "461230966842064897", "quoteToken": "q"}]}))
    result = line.send(client, config_for(server), outgoing(to="U4af4980629f1e2f5d0f8e2b8f8a8b8c8"))
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.status == Status.DELIVERED
    assert result.provider_message_id == "461230966842064897"
    (sent,) = server.requests
    assert sent.path == "/v2/bot/message/push"
    assert sent.headers["authorization"] == "Bearer line-access-token"
    assert sent.headers["x-line-retry-key"] == line.retry_key(CORRELATION_ID)
    assert sent.json() == {
        "to": "U4af4980629f1e2f5d0f8e2b8f8a8b8c8",
        "messages": [{"type": "text", "text": "Hello there"}],
    }


def test_retry_after_lost_answer_sends_the_same_key_and_409_is_accepted(server, client):
    server.queue(
        Reply(200, {"sentMessages": [{"id": "1"}]}, delay=1.0),
        Reply(
            409,
            {"message": "The retry key is already accepted", "sentMessages": [{"id": "1"}]},
            headers={"x-line-accepted-request-id": "req-1"},
        ),
    )
    first = line.send(client, config_for(server), outgoing())
    assert first.outcome == SendOutcome.TRANSIENT  # safe to retry thanks to the retry key
    second = line.send(client, config_for(server), outgoing())
    assert second.outcome == SendOutcome.ACCEPTED
    assert second.provider_message_id == "1"
    assert second.status == Status.DELIVERED
    keys = {r.headers["x-line-retry-key"] for r in server.requests}
    assert keys == {line.retry_key(CORRELATION_ID)}


def test_409_without_body_falls_back_to_the_accepted_request_id(server, client):
    server.queue(Reply(409, {"message": "dup"}, headers={"x-line-accepted-request-id": "req-9"}))
    result = line.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id == "req-9"


def test_send_rejected_with_details(server, client):
    server.queue(
        Reply(
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "The property, 'to', is invalid", "property": "to"}],
            },
        )
    )
    result = line.send(client, config_for(server), outgoing(to="bad"))
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "400"
    assert result.error_title == line.ERRORS["400"].title
    assert "The property, 'to', is invalid" in result.error_detail


def test_send_unauthorized(server, client):
    server.queue(Reply(401, {"message": "Authentication failed"}))
    result = line.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "401"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_send_transient(server, client, status):
    server.queue(Reply(status, {"message": "busy"}, headers={"Retry-After": "12"}))
    result = line.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.retry_after == 12


def test_send_connection_refused(client):
    config = {**CONFIG, "api_base_url": f"http://127.0.0.1:{refused_port()}"}
    result = line.send(client, config, outgoing())
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error_code == "connection_failed"
