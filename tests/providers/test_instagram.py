import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import Status
from statuses.providers import instagram
from statuses.providers.base import HandshakeReply, MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import (
    fuzz,
    make_request,
    outgoing,
    parse_or_malformed,
    recording_server_fixture,
    signed_meta_request,
)
from tests.providers.meta_payloads import IG_ID, IGSID, ig_seen, messaging_payload

CONFIG = {
    "ig_user_id": IG_ID,
    "access_token": "test-ig-token",
    "app_secret": "test_ig_app_secret",
    "verify_token": "test-verify-token",
}
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw"
running_server, server = recording_server_fixture()


def parse(payload):
    return instagram.parse(signed_meta_request(payload, "test_ig_app_secret"), CONFIG)


def test_verify():
    request = signed_meta_request(
        messaging_payload(ig_seen(), obj="instagram"), "test_ig_app_secret"
    )
    assert instagram.verify(request, CONFIG)
    forged = signed_meta_request(messaging_payload(ig_seen(), obj="instagram"), "test_app_secret")
    assert not instagram.verify(forged, CONFIG)
    assert not instagram.verify(make_request(request.body), CONFIG)


def test_handshake():
    query = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "9"}
    reply = instagram.handshake(make_request(method="GET", query=query), CONFIG)
    assert reply == HandshakeReply(200, b"9")
    query["hub.verify_token"] = "x"
    assert instagram.handshake(make_request(method="GET", query=query), CONFIG).status_code == 403


def test_seen_is_a_read_watermark_up_to_a_mid():
    [watermark] = parse(messaging_payload(ig_seen(), obj="instagram", owner=IG_ID)).watermarks
    assert watermark.status == Status.READ
    assert watermark.contact_address == IGSID
    assert watermark.up_to is None
    assert watermark.up_to_provider_message_id == MID
    assert watermark.dedupe_key == f"{IG_ID}:{IGSID}:read:{MID}"
    assert watermark.occurred_at.isoformat() == "2026-01-01T00:03:19.340000+00:00"


def test_seen_wrapped_in_changes():
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": IG_ID,
                "time": 1767225800123,
                "changes": [
                    {"field": "messaging_seen", "value": ig_seen("mid.A")},
                    {"field": "comments", "value": {"id": "c1", "text": "nice"}},
                ],
            }
        ],
    }
    [watermark] = parse(payload).watermarks
    assert watermark.up_to_provider_message_id == "mid.A"


def test_seen_with_a_messenger_style_watermark():
    event = ig_seen()
    event["read"]["watermark"] = 1767225799000
    [watermark] = parse(messaging_payload(event, obj="instagram", owner=IG_ID)).watermarks
    assert watermark.up_to is not None and watermark.up_to.year == 2026
    assert watermark.up_to_provider_message_id == MID


def test_batch_and_echo():
    echo = {
        "sender": {"id": IG_ID},
        "recipient": {"id": IGSID},
        "timestamp": 1767225700000,
        "message": {"mid": "mid.echo", "text": "from the app", "is_echo": True},
    }
    inbound = {
        "sender": {"id": IGSID},
        "recipient": {"id": IG_ID},
        "timestamp": 1767225700001,
        "message": {"mid": "mid.in", "text": "hey"},
    }
    result = parse(
        messaging_payload(ig_seen("mid.1"), echo, inbound, ig_seen("mid.2"), obj="instagram")
    )
    assert [w.up_to_provider_message_id for w in result.watermarks] == ["mid.1", "mid.2"]
    echo_message, inbound_message = result.inbound
    assert echo_message.is_echo and echo_message.contact_address == IGSID
    assert not inbound_message.is_echo and inbound_message.contact_address == IGSID


@pytest.mark.parametrize("body", [b"nope", b'{"entry": {}}'])
def test_malformed_bodies(body):
    with pytest.raises(MalformedPayload):
        instagram.parse(make_request(body), CONFIG)


def test_malformed_entry_is_skipped_with_a_reason():
    body = b'{"entry": [{"changes": [{"field": "messaging_seen", "value": 3}]}]}'
    result = instagram.parse(make_request(body), CONFIG)
    assert result.applied_count == 0
    assert [s.kind for s in result.skipped] == ["malformed"]


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_malformed(body):
    parse_or_malformed(instagram, make_request(body), CONFIG)


def send(server, message=None):
    with httpx.Client(timeout=2) as client:
        return instagram.send(
            client, {**CONFIG, "api_base_url": server.url}, message or outgoing(to=IGSID)
        )


def test_send_accepted(server):
    server.queue(Reply(200, {"recipient_id": IGSID, "message_id": "mid.out"}))
    result = send(server)
    assert (result.outcome, result.provider_message_id) == (SendOutcome.ACCEPTED, "mid.out")
    [request] = server.requests
    assert request.path == f"/v21.0/{IG_ID}/messages"
    assert request.headers["authorization"] == "Bearer test-ig-token"
    assert request.query == {}
    assert request.json() == {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello there"},
    }


def test_send_rejected(server):
    server.queue(
        Reply(
            400,
            {
                "error": {
                    "message": "Invalid OAuth access token - Cannot parse access token",
                    "type": "OAuthException",
                    "code": 190,
                    "fbtrace_id": "Ab",
                }
            },
        )
    )
    result = send(server)
    assert (result.outcome, result.error_code) == (SendOutcome.REJECTED, "190")
    assert result.error_title.startswith("Invalid OAuth access token")
