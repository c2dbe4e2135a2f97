"""Agent and widget WebSocket consumers over the real ASGI stack (session auth, origin check,
routing) and the configured channel layer (Redis in CI)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from channels_app import groups
from config.asgi import application
from inbox.models import Membership, Message
from statuses import services
from statuses.models import StatusEvent

pytestmark = [pytest.mark.django_db(transaction=True)]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def _agent(account, username):
    user = get_user_model().objects.create_user(username=username, password="pw")
    if account is not None:
        Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _connect(path, cookie=None):
    headers = [ORIGIN]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def _status(message, status, source=StatusEvent.Source.WEBHOOK):
    await database_sync_to_async(services.message_status_report)(
        message=message, status=status, source=source
    )


# ---------------------------------------------------------------------------------------------
# Agent socket
# ---------------------------------------------------------------------------------------------


async def test_agent_socket_requires_login():
    communicator, connected = await _connect("/ws/agent/")
    assert not connected
    await communicator.disconnect()


async def test_agent_socket_requires_an_account():
    cookie = await sync_to_async(_agent)(None, "drifter")
    communicator, connected = await _connect("/ws/agent/", cookie)
    assert not connected
    await communicator.disconnect()


async def test_agent_socket_refuses_foreign_origin(account):
    cookie = await sync_to_async(_agent)(account, "ada")
    communicator = WebsocketCommunicator(
        application,
        "/ws/agent/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", f"sessionid={cookie}".encode())],
    )
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_agent_receives_own_account_events_only(account, other_account, inbox, make_inbox):
    make_message = sync_to_async(_make_message)
    mine = await make_message(inbox, "+15550000001")
    other_inbox = await sync_to_async(make_inbox)(other_account)
    theirs = await make_message(other_inbox, "+15550000002")
    cookie_a = await sync_to_async(_agent)(account, "ada")
    cookie_b = await sync_to_async(_agent)(other_account, "bob")
    agent_a, ok_a = await _connect("/ws/agent/", cookie_a)
    agent_b, ok_b = await _connect("/ws/agent/", cookie_b)
    assert ok_a and ok_b

    await _status(mine, "delivered")
    received = await agent_a.receive_json_from(timeout=3)
    assert received["type"] == "events"
    (event,) = received["events"]
    assert event["type"] == "message.status"
    assert event["message_id"] == str(mine.id)
    assert event["status"] == "delivered"
    assert event["tick"] == "double"
    assert event["version"] == 2
    assert await agent_b.receive_nothing(timeout=0.3)

    await _status(theirs, "read")
    received = await agent_b.receive_json_from(timeout=3)
    assert received["events"][0]["message_id"] == str(theirs.id)
    assert await agent_a.receive_nothing(timeout=0.3)

    await agent_a.disconnect()
    await agent_b.disconnect()


async def test_agent_socket_drops_events_older_than_already_forwarded(account):
    cookie = await sync_to_async(_agent)(account, "ada")
    agent, connected = await _connect("/ws/agent/", cookie)
    assert connected
    layer = get_channel_layer()

    def event(version, status):
        return {"type": "message.status", "message_id": "m-1", "status": status, "version": version}

    group = groups.account(account.id)
    await layer.group_send(group, {"type": "agent.events", "events": [event(3, "read")]})
    assert (await agent.receive_json_from(timeout=3))["events"][0]["version"] == 3
    # A broadcast from a slower process overtaken by a newer one: never shown.
    await layer.group_send(
        group, {"type": "agent.events", "events": [event(2, "delivered"), event(3, "read")]}
    )
    assert await agent.receive_nothing(timeout=0.3)
    await layer.group_send(group, {"type": "agent.events", "events": [event(4, "deleted")]})
    assert (await agent.receive_json_from(timeout=3))["events"][0]["version"] == 4
    await agent.disconnect()


async def test_agent_receives_new_inbound_message(account, make_inbox):
    from datetime import UTC, datetime

    from inbox.services import inbound_messages_store
    from statuses.providers.base import InboundMessage

    widget_inbox = await sync_to_async(make_inbox)(account, "web_widget")
    cookie = await sync_to_async(_agent)(account, "ada")
    agent, connected = await _connect("/ws/agent/", cookie)
    assert connected
    await database_sync_to_async(inbound_messages_store)(
        inbox=widget_inbox,
        inbound=[InboundMessage("web-1", "w-1", "Hello there", datetime.now(UTC))],
    )
    (event,) = (await agent.receive_json_from(timeout=3))["events"]
    assert event["type"] == "message.created"
    assert event["direction"] == "incoming"
    assert event["content"] == "Hello there"
    await agent.disconnect()


# ---------------------------------------------------------------------------------------------
# Widget socket
# ---------------------------------------------------------------------------------------------


def _make_message(inbox, to, content="Hello"):
    from django.utils import timezone

    from inbox import services as inbox_services

    contact = inbox_services.contact_get_or_create(inbox=inbox, address=to)
    conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
    now = timezone.now()
    return Message.objects.create(
        account_id=inbox.account_id,
        inbox=inbox,
        conversation=conversation,
        channel_type=inbox.channel_type,
        direction=Message.Direction.OUTGOING,
        to_address=to,
        content=content,
        created_at=now,
    )


@pytest.fixture
def widget_setup(account, make_inbox):
    inbox = make_inbox(account, "web_widget")
    mine = _make_message(inbox, "web-alice", "For Alice")
    theirs = _make_message(inbox, "web-bob", "For Bob")
    return inbox, mine, theirs


async def test_widget_socket_requires_a_valid_token(widget_setup, make_inbox, account):
    inbox, mine, _ = widget_setup
    contact = await database_sync_to_async(lambda: mine.conversation.contact)()
    for path in (
        f"/ws/widget/{inbox.id}/",
        f"/ws/widget/{inbox.id}/?token=nope",
    ):
        communicator, connected = await _connect(path)
        assert not connected, path
        await communicator.disconnect()
    # A valid token does not open another inbox.
    other = await sync_to_async(make_inbox)(account, "web_widget")
    communicator, connected = await _connect(f"/ws/widget/{other.id}/?token={contact.token}")
    assert not connected
    await communicator.disconnect()


async def test_widget_receives_only_its_contacts_events_and_acks_its_own(widget_setup):
    from channels_app import broadcast
    from channels_app.events import WidgetMessage

    inbox, mine, theirs = widget_setup
    alice = await database_sync_to_async(lambda: mine.conversation.contact)()
    bob = await database_sync_to_async(lambda: theirs.conversation.contact)()
    widget_a, ok_a = await _connect(f"/ws/widget/{inbox.id}/?token={alice.token}")
    widget_b, ok_b = await _connect(f"/ws/widget/{inbox.id}/?token={bob.token}")
    assert ok_a and ok_b

    event = WidgetMessage.from_message(mine)
    await sync_to_async(broadcast.widget_event)(alice.id, event)
    assert await widget_a.receive_json_from(timeout=3) == {
        "type": "message",
        "message_id": str(mine.id),
        "content": "For Alice",
        "created_at": mine.created_at.isoformat(),
    }
    assert await widget_b.receive_nothing(timeout=0.3)

    # Alice acknowledges her message, and tries to acknowledge Bob's: only hers counts.
    await widget_a.send_json_to({"type": "ack", "message_ids": [str(mine.id), str(theirs.id)]})
    await widget_a.send_json_to({"type": "ping"})
    assert await widget_a.receive_json_from(timeout=3) == {"type": "pong"}
    await database_sync_to_async(mine.refresh_from_db)()
    await database_sync_to_async(theirs.refresh_from_db)()
    assert mine.status == "delivered"
    assert theirs.status == "queued"
    sources = await database_sync_to_async(
        lambda: list(StatusEvent.objects.filter(message=mine).values_list("source", "status"))
    )()
    assert sources == [("widget", "delivered")]

    await widget_a.send_json_to({"type": "read", "message_id": str(mine.id)})
    await widget_a.send_json_to({"type": "ping"})
    await widget_a.receive_json_from(timeout=3)
    await database_sync_to_async(mine.refresh_from_db)()
    assert mine.status == "read"

    # Garbage is ignored, never an error that drops the socket.
    await widget_a.send_json_to({"type": "ack", "message_ids": ["not-a-uuid", 7]})
    await widget_a.send_json_to([1, 2])
    await widget_a.send_json_to({"type": "ping"})
    assert await widget_a.receive_json_from(timeout=3) == {"type": "pong"}

    await widget_a.disconnect()
    await widget_b.disconnect()
