"""Widget abuse over the socket (issue #10 item 7): connections per address and frames per
contact, refused with an error frame and close code 4429, counted in the shared cache."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from channels_app.consumers import CLOSE_RATE_LIMITED
from config.asgi import application
from inbox import services
from tests.conftest import wait_for_fresh_window

pytestmark = [pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture(autouse=True)
def _steady_clock():
    wait_for_fresh_window(3600)  # the rates below are per hour


@pytest.fixture
def widget(account, make_inbox):
    return make_inbox(account, "web_widget")


def _contact(inbox, address):
    return services.contact_get_or_create(inbox=inbox, address=address).token


def from_address(ip, forwarded_for=None):
    """The ASGI app as reached by a client at ``ip`` (daphne puts it in the scope)."""

    async def app(scope, receive, send):
        headers = list(scope["headers"])
        if forwarded_for:
            headers.append((b"x-forwarded-for", forwarded_for.encode()))
        return await application(
            {**scope, "client": (ip, 50000), "headers": headers}, receive, send
        )

    return app


async def open_socket(inbox, token, ip="192.0.2.1", forwarded_for=None):
    communicator = WebsocketCommunicator(
        from_address(ip, forwarded_for), f"/ws/widget/{inbox.id}/?token={token}", headers=[ORIGIN]
    )
    connected, _ = await communicator.connect()
    return communicator, connected


async def assert_refused(communicator):
    frame = await communicator.receive_json_from()
    assert frame["type"] == "error"
    assert frame["code"] == "rate_limited"
    assert "Try again in" in frame["message"]
    assert 0 < frame["retry_after"] <= 3600
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": CLOSE_RATE_LIMITED}


async def test_connections_are_limited_per_address(widget, settings):
    settings.TICKMARK_WIDGET_SOCKET_RATE = "3/hour"
    token = await sync_to_async(_contact)(widget, "web-a")
    for _ in range(3):
        communicator, connected = await open_socket(widget, token)
        assert connected
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
        await communicator.disconnect()
    communicator, connected = await open_socket(widget, token, forwarded_for="198.51.100.1")
    assert connected  # accepted only to say why, then closed
    await assert_refused(communicator)
    # Another address connects.
    communicator, connected = await open_socket(widget, token, ip="192.0.2.2")
    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_attempts_with_bad_tokens_count_too(widget, settings):
    settings.TICKMARK_WIDGET_SOCKET_RATE = "3/hour"
    token = await sync_to_async(_contact)(widget, "web-a")
    for i in range(3):
        communicator, connected = await open_socket(widget, f"guess-{i}")
        assert not connected
    communicator, connected = await open_socket(widget, token)
    await assert_refused(communicator)


async def test_frames_are_limited_per_contact(widget, settings):
    settings.TICKMARK_WIDGET_FRAME_RATE = "5/hour"
    token = await sync_to_async(_contact)(widget, "web-a")
    first, connected = await open_socket(widget, token)
    assert connected
    for _ in range(3):
        await first.send_json_to({"type": "ping"})
        assert await first.receive_json_from() == {"type": "pong"}
    # A second tab of the same contact (from elsewhere) shares the contact's budget.
    second, connected = await open_socket(widget, token, ip="192.0.2.9")
    assert connected
    for _ in range(2):
        await second.send_json_to({"type": "ping"})
        assert await second.receive_json_from() == {"type": "pong"}
    await second.send_to(text_data="not even json")
    await assert_refused(second)
    await first.send_json_to({"type": "ack", "message_ids": []})
    await assert_refused(first)
    # Another contact is unaffected.
    other = await sync_to_async(_contact)(widget, "web-b")
    third, connected = await open_socket(widget, other)
    assert connected
    await third.send_json_to({"type": "ping"})
    assert await third.receive_json_from() == {"type": "pong"}
    await third.disconnect()
