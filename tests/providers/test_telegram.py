import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import Status
from statuses.providers import telegram
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

CONFIG = {"bot_token": "123456:ABC-secret-token", "secret_token": "s3cret-Token_1"}

UPDATE = {
    "update_id": 10000,
    "message": {
        "message_id": 1365,
        "date": 1767225600,
        "chat": {"id": 1111111, "type": "private", "first_name": "Ada"},
        "from": {"id": 1111111, "is_bot": False, "first_name": "Ada", "last_name": "Lovelace"},
        "text": "Hi, where is my order?",
    },
}


def signed(body, secret=CONFIG["secret_token"]):
    return request(body, {"X-Telegram-Bot-Api-Secret-Token": secret})


def test_verify_accepts_the_secret_token():
    assert telegram.verify(signed(UPDATE), CONFIG)


@pytest.mark.parametrize(
    "headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {"Other": "s3cret-Token_1"}]
)
def test_verify_refuses_missing_or_wrong_token(headers):
    assert not telegram.verify(request(UPDATE, headers), CONFIG)


def test_verify_refuses_when_no_secret_is_configured():
    assert not telegram.verify(signed(UPDATE, ""), {"secret_token": ""})
    assert not telegram.verify(signed(UPDATE), {})


def test_handshake_is_none():
    assert telegram.handshake(signed(UPDATE), CONFIG) is None


def test_parse_inbound_message():
    result = telegram.parse(signed(UPDATE), CONFIG)
    assert result.statuses == [] and result.watermarks == []
    (inbound,) = result.inbound
    assert inbound.contact_address == "1111111"
    assert inbound.provider_message_id == "1111111:1365"
    assert inbound.content == "Hi, where is my order?"
    assert inbound.contact_name == "Ada Lovelace"
    assert inbound.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_duplicate_updates_give_the_same_message_id():
    first = telegram.parse(signed(UPDATE), CONFIG).inbound[0]
    again = telegram.parse(signed(json.dumps(UPDATE, indent=2)), CONFIG).inbound[0]
    assert first == again


def test_parse_photo_with_caption_and_group_chat():
    update = {
        "update_id": 10001,
        "message": {
            "message_id": 7,
            "date": 1767225600,
            "chat": {"id": -100123, "type": "group", "title": "Team"},
            "photo": [{"file_id": "x"}],
            "caption": "look",
        },
    }
    (inbound,) = telegram.parse(signed(update), CONFIG).inbound
    assert inbound.contact_address == "-100123"
    assert inbound.provider_message_id == "-100123:7"
    assert inbound.content == "look"


def test_parse_ignores_other_updates():
    update = {"update_id": 3, "my_chat_member": {"chat": {"id": 1}}, "new_field": [1, 2]}
    result = telegram.parse(signed(update), CONFIG)
    assert result.inbound == [] and result.statuses == []
    # Recorded, not dropped without a trace (issue #9): a my_chat_member without the bot's new
    # status cannot be the consent change it is meant to be (DESIGN §14), so it is malformed.
    assert [s.kind for s in result.skipped] == ["malformed", "ignored"]


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'"x"'])
def test_parse_malformed(body):
    with pytest.raises(MalformedPayload):
        telegram.parse(signed(body), CONFIG)


def test_parse_skips_a_malformed_message():
    result = telegram.parse(signed(b'{"update_id":1,"message":{"text":"no chat"}}'), CONFIG)
    assert result.inbound == [] and [s.kind for s in result.skipped] == ["malformed"]


@given(st.binary(max_size=300))
def test_parse_never_raises_anything_but_malformed(body):
    with contextlib.suppress(MalformedPayload):
        telegram.parse(signed(body), CONFIG)


@given(json_shapes(["update_id", "message", "channel_post", "chat", "id", "message_id", "date"]))
def test_parse_of_json_shapes_never_raises_anything_but_malformed(update):
    with contextlib.suppress(MalformedPayload):
        telegram.parse(signed(json.dumps(update)), CONFIG)


# --- send -------------------------------------------------------------------------------


def config_for(server):
    return {**CONFIG, "api_base_url": server.url}


def test_send_accepted(server, client):
    server.queue(
        Reply(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": 42,
                    "date": 1767225600,
                    "chat": {"id": 1111111, "type": "private"},
                    "text": "Hello there",
                },
            },
        )
    )
    result = telegram.send(client, config_for(server), outgoing(to="1111111"))
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.status == Status.SENT
    assert result.provider_message_id == "1111111:42"
    (sent,) = server.requests
    assert sent.method == "POST"
    assert sent.path == "/bot123456:ABC-secret-token/sendMessage"
    assert sent.json() == {"chat_id": "1111111", "text": "Hello there"}


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("Forbidden: bot was blocked by the user", "403:bot_blocked"),
        ("Forbidden: user is deactivated", "403:user_deactivated"),
        ("Forbidden: bot can't initiate conversation with a user", "403:cant_initiate"),
        ("Bad Request: chat not found", "400:chat_not_found"),
        ("Forbidden: something new", "403"),
    ],
)
def test_send_rejected(server, client, description, code):
    status = int(code[:3])
    server.queue(Reply(status, {"ok": False, "error_code": status, "description": description}))
    result = telegram.send(client, config_for(server), outgoing(to="1111111"))
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == code
    assert code in telegram.ERRORS
    assert result.error_title == telegram.ERRORS[code].title
    assert result.error_detail == description


def test_send_rate_limited_uses_retry_after_parameter(server, client):
    server.queue(
        Reply(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        )
    )
    result = telegram.send(client, config_for(server), outgoing(to="1"))
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.retry_after == 7
    assert result.error_code == "429"


def test_send_server_error_is_transient(server, client):
    server.queue(Reply(502, "Bad Gateway", headers={"Retry-After": "3"}))
    result = telegram.send(client, config_for(server), outgoing(to="1"))
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.retry_after == 3


def test_send_timeout_is_unknown_and_hides_the_token(server, client):
    server.queue(Reply(200, {"ok": True}, delay=1.5))
    result = telegram.send(client, config_for(server), outgoing(to="1"))
    assert result.outcome == SendOutcome.UNKNOWN
    assert "ABC-secret-token" not in repr(result)


def test_send_connection_refused_is_transient_and_hides_the_token(client):
    config = {**CONFIG, "api_base_url": f"http://127.0.0.1:{refused_port()}"}
    result = telegram.send(client, config, outgoing(to="1"))
    assert result.outcome == SendOutcome.TRANSIENT
    assert "ABC-secret-token" not in repr(result)


def test_send_dropped_connection_is_unknown(server, client):
    server.queue(Reply(drop=True))
    result = telegram.send(client, config_for(server), outgoing(to="1"))
    assert result.outcome == SendOutcome.UNKNOWN
