import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import Status
from statuses.providers import tiktok
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.chat_support import (  # noqa: F401 (fixtures)
    RECEIVED_AT,
    client_fixture,
    json_shapes,
    outgoing,
    refused_port,
    request,
    server_fixture,
)

SECRET = "test_client_secret"
CONFIG = {
    "business_id": "-000TESTBUSINESSOPENID",
    "access_token": "tt-token",
    "client_secret": SECRET,
}
VECTOR_BODY = (
    b'{"client_key":"awtestclientkey","event":"im_mark_read_msg","create_time":1767225600,'
    b'"user_openid":"-000TESTBUSINESSOPENID","content":"{}"}'
)
VECTOR_HEADER = "t=1767225600,s=9851ee44605d2d0929174cca950d8bdec9de2a6cf3084ba84a53146099491967"
T = 1767225600

READ_CONTENT = {
    "conversation_id": "u5JhpselBAhoPOlnH0tZ9y07kg==",
    "from_user": {"id": "CUSTOMER_OPENID"},
    "to_user": {"id": "-000TESTBUSINESSOPENID"},
    "read": {"last_read_timestamp": 1767225598123},
}


def envelope(event, content):
    return {
        "client_key": "awtestclientkey",
        "event": event,
        "create_time": T,
        "user_openid": "-000TESTBUSINESSOPENID",
        "content": content if isinstance(content, str) else json.dumps(content),
    }


def signed(body, t=T, received_at=RECEIVED_AT):
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return request(body, {"TikTok-Signature": f"t={t},s={digest}"}, received_at=received_at)


def test_reference_vector():
    assert tiktok.signature(SECRET, VECTOR_BODY, T) == VECTOR_HEADER
    assert tiktok.verify(request(VECTOR_BODY, {"TikTok-Signature": VECTOR_HEADER}), CONFIG)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=1767225600",
        "s=9851ee44605d2d0929174cca950d8bdec9de2a6cf3084ba84a53146099491967",
        "t=1767225601,s=9851ee44605d2d0929174cca950d8bdec9de2a6cf3084ba84a53146099491967",
        "t=abc,s=9851ee44605d2d0929174cca950d8bdec9de2a6cf3084ba84a53146099491967",
        "t=1767225600,s=" + "0" * 64,
        "garbage",
    ],
)
def test_forged_or_missing_signature(header):
    headers = {} if header is None else {"TikTok-Signature": header}
    assert not tiktok.verify(request(VECTOR_BODY, headers), CONFIG)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=3)])
def test_stale_or_future_timestamp_is_refused(skew):
    req = request(VECTOR_BODY, {"TikTok-Signature": VECTOR_HEADER}, received_at=RECEIVED_AT + skew)
    assert not tiktok.verify(req, CONFIG)


def test_timestamp_within_the_window_is_accepted():
    later = RECEIVED_AT + timedelta(minutes=4)
    assert tiktok.verify(request(VECTOR_BODY, {"TikTok-Signature": VECTOR_HEADER}, later), CONFIG)


def test_no_secret_configured():
    assert not tiktok.verify(request(VECTOR_BODY, {"TikTok-Signature": VECTOR_HEADER}), {})


def test_read_event_is_a_watermark():
    req = signed(envelope("im_mark_read_msg", READ_CONTENT))
    assert tiktok.verify(req, CONFIG)
    assert tiktok.handshake(req, CONFIG) is None
    result = tiktok.parse(req, CONFIG)
    assert result.statuses == [] and result.inbound == []
    (mark,) = result.watermarks
    assert mark.status == Status.READ
    assert mark.contact_address == "CUSTOMER_OPENID"
    assert mark.up_to == datetime(2025, 12, 31, 23, 59, 58, 123000, tzinfo=UTC)
    assert mark.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert mark.raw_status == "im_mark_read_msg"
    assert mark.dedupe_key == "u5JhpselBAhoPOlnH0tZ9y07kg==:im_mark_read_msg:1767225598123"


def test_reference_example_payload_parses():
    body = (
        '{"client_key":"awtestclientkey","event":"im_mark_read_msg","create_time":1767225600,\n'
        ' "user_openid":"-000TESTBUSINESSOPENID",\n'
        ' "content":"{\\"conversation_id\\":\\"u5JhpselBAhoPOlnH0tZ9y07kg==\\",\\"from_user\\":'
        '{\\"id\\":\\"CUSTOMER_OPENID\\"},\\"to_user\\":{\\"id\\":\\"-000TESTBUSINESSOPENID\\"},'
        '\\"read\\":{\\"last_read_timestamp\\":1767225598123}}"}'
    )
    (mark,) = tiktok.parse(signed(body), CONFIG).watermarks
    assert mark.contact_address == "CUSTOMER_OPENID"


def test_duplicate_read_events_share_the_dedupe_key_and_a_new_read_does_not():
    first = tiktok.parse(signed(envelope("im_mark_read_msg", READ_CONTENT)), CONFIG).watermarks[0]
    again = tiktok.parse(signed(envelope("im_mark_read_msg", READ_CONTENT)), CONFIG).watermarks[0]
    assert first.dedupe_key == again.dedupe_key
    later = {**READ_CONTENT, "read": {"last_read_timestamp": 1767225699000}}
    newer = tiktok.parse(signed(envelope("im_mark_read_msg", later)), CONFIG).watermarks[0]
    assert newer.dedupe_key != first.dedupe_key


def test_contact_is_the_personal_account_whichever_side_it_is_on():
    swapped = {
        **READ_CONTENT,
        "from_user": {"id": "-000TESTBUSINESSOPENID"},
        "to_user": {"id": "CUSTOMER_OPENID"},
    }
    (mark,) = tiktok.parse(signed(envelope("im_mark_read_msg", swapped)), CONFIG).watermarks
    assert mark.contact_address == "CUSTOMER_OPENID"


def test_inbound_message_and_echo():
    content = {
        "conversation_id": "u5JhpselBAhoPOlnH0tZ9y07kg==",
        "message_id": "u5Buqc6lAghuOelnHUZV88DK2A==",
        "timestamp": 1767225590000,
        "from": "wthzu_nb",
        "from_user": {"id": "CUSTOMER_OPENID"},
        "to_user": {"id": "-000TESTBUSINESSOPENID"},
        "type": "text",
        "text": {"body": "hello"},
    }
    (inbound,) = tiktok.parse(signed(envelope("im_receive_msg", content)), CONFIG).inbound
    assert inbound.contact_address == "CUSTOMER_OPENID"
    assert inbound.provider_message_id == "u5Buqc6lAghuOelnHUZV88DK2A=="
    assert inbound.content == "hello"
    assert inbound.contact_name == "wthzu_nb"
    assert inbound.occurred_at == datetime(2025, 12, 31, 23, 59, 50, tzinfo=UTC)
    assert not inbound.is_echo

    echo_content = {
        **content,
        "from_user": {"id": "-000TESTBUSINESSOPENID"},
        "to_user": {"id": "CUSTOMER_OPENID"},
        "message_id": "echo1",
    }
    (echo,) = tiktok.parse(signed(envelope("im_send_msg", echo_content)), CONFIG).inbound
    assert echo.is_echo and echo.contact_address == "CUSTOMER_OPENID"


def test_unknown_events_parse_to_nothing():
    result = tiktok.parse(signed(envelope("im_referral_msg", {"x": 1})), CONFIG)
    assert result.watermarks == [] and result.inbound == [] and result.statuses == []
    assert [s.kind for s in result.skipped] == ["ignored"]  # recorded (issue #9)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'{"content":"{}"}',
    ],
)
def test_malformed(body):
    with pytest.raises(MalformedPayload):
        tiktok.parse(signed(body), CONFIG)


# Issue #9: a readable envelope with a bad event is recorded and skipped, not refused.
@pytest.mark.parametrize(
    "body",
    [
        json.dumps(envelope("im_mark_read_msg", "not json")).encode(),
        json.dumps(envelope("im_mark_read_msg", "[1]")).encode(),
        json.dumps(envelope("im_mark_read_msg", {"read": {}})).encode(),
        json.dumps(
            envelope("im_mark_read_msg", {**READ_CONTENT, "from_user": {}, "to_user": {}})
        ).encode(),
        json.dumps(envelope("im_receive_msg", {"from_user": {"id": "c"}})).encode(),
    ],
)
def test_malformed_event_is_skipped_with_a_reason(body):
    result = tiktok.parse(signed(body), CONFIG)
    assert result.applied_count == 0
    assert [s.kind for s in result.skipped] == ["malformed"]


@given(st.binary(max_size=300))
def test_parse_arbitrary_bytes(body):
    with contextlib.suppress(MalformedPayload):
        tiktok.parse(signed(body), CONFIG)


@given(
    st.sampled_from(["im_mark_read_msg", "im_receive_msg", "im_send_msg"]),
    json_shapes(
        [
            "conversation_id",
            "read",
            "last_read_timestamp",
            "from_user",
            "id",
            "message_id",
            "timestamp",
            "text",
            "body",
            "type",
        ]
    ),
)
def test_parse_arbitrary_content(event, content):
    with contextlib.suppress(MalformedPayload):
        tiktok.parse(signed(envelope(event, content)), CONFIG)


# --- send -------------------------------------------------------------------------------


def config_for(server):
    return {**CONFIG, "api_base_url": server.url}


def test_send_accepted(server, client):
    server.queue(
        Reply(
            200,
            {
                "code": 0,
                "message": "OK",
                "request_id": "r1",
                "data": {"message": {"message_id": "mid.TT_SENT_001"}},
            },
        )
    )
    result = tiktok.send(client, config_for(server), outgoing(to="u5JhpselBAhoPOlnH0tZ9y07kg=="))
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.status == Status.SENT
    assert result.provider_message_id == "mid.TT_SENT_001"
    (sent,) = server.requests
    assert sent.path == "/open_api/v1.3/business/message/send/"
    assert sent.headers["access-token"] == "tt-token"
    assert sent.json() == {
        "business_id": "-000TESTBUSINESSOPENID",
        "recipient_type": "CONVERSATION",
        "recipient": "u5JhpselBAhoPOlnH0tZ9y07kg==",
        "message_type": "TEXT",
        "text": {"body": "Hello there"},
    }


def test_send_rejected_by_code(server, client):
    server.queue(Reply(200, {"code": 40105, "message": "Access token is invalid", "data": {}}))
    result = tiktok.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "40105"
    assert result.error_title == tiktok.ERRORS["40105"].title
    assert result.error_detail == "Access token is invalid"


def test_send_rate_limit_code_is_transient(server, client):
    server.queue(Reply(200, {"code": 40100, "message": "Too many requests"}))
    assert tiktok.send(client, config_for(server), outgoing()).outcome == SendOutcome.TRANSIENT


@pytest.mark.parametrize("status", [429, 500, 502])
def test_send_http_transient(server, client, status):
    server.queue(Reply(status, "busy", headers={"Retry-After": "2"}))
    result = tiktok.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.retry_after == 2


def test_send_http_4xx_is_rejected(server, client):
    server.queue(Reply(403, "forbidden"))
    result = tiktok.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.REJECTED


def test_send_timeout_is_unknown(server, client):
    server.queue(Reply(200, {"code": 0}, delay=1.0))
    assert tiktok.send(client, config_for(server), outgoing()).outcome == SendOutcome.UNKNOWN


def test_send_connection_refused(client):
    config = {**CONFIG, "api_base_url": f"http://127.0.0.1:{refused_port()}"}
    assert tiktok.send(client, config, outgoing()).outcome == SendOutcome.TRANSIENT
