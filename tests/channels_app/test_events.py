"""One schema per live event (``channels_app/events.py``), checked the way Zulip checks its
``event_types``: every event round-trips through JSON unchanged, and every frame a real flow puts
on the agent and widget sockets matches its schema exactly."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime
from typing import get_type_hints

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from channels_app import events
from channels_app.events import (
    ACCOUNT_EVENTS,
    AGENT_FRAMES,
    WIDGET_FRAMES,
    AgentEvents,
    MessageCreated,
    MessageStatus,
    Pong,
    SchemaError,
    SocketError,
    StatusError,
    WidgetMessage,
    check_frame,
)
from config.asgi import application
from inbox import services as inbox_services
from inbox.models import Membership
from statuses import outbound, sending
from statuses import services as status_services
from statuses.models import StatusEvent
from statuses.providers.base import InboundMessage
from statuses.services import StatusChange

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
NOW = datetime(2026, 11, 29, 14, 5, 7, 123456, tzinfo=UTC)

# The exact wire shape of each event: field → JSON type. A renamed, added or retyped field
# fails here first, and static/inbox/socket.js must follow it.
WIRE = {
    MessageStatus: {
        "message_id": str,
        "conversation_id": int,
        "status": str,
        "tick": str,
        "error": (dict, type(None)),
        "status_updated_at": str,
        "version": int,
        "campaign_id": (str, type(None)),
    },
    MessageCreated: {
        "message_id": str,
        "conversation_id": int,
        "direction": str,
        "content": str,
        "status": str,
        "tick": str,
        "version": int,
        "created_at": str,
        "status_updated_at": str,
    },
    WidgetMessage: {"message_id": str, "content": str, "created_at": str},
    SocketError: {"code": str, "message": str, "retry_after": int},
    Pong: {},
    AgentEvents: {"events": list},
}


def _change(**overrides) -> StatusChange:
    fields = {
        "message_id": uuid.uuid4(),
        "account_id": 1,
        "conversation_id": 7,
        "channel_type": "whatsapp_cloud",
        "previous_status": "sent",
        "status": "failed",
        "version": 3,
        "status_updated_at": NOW,
        "error_code": "131026",
        "error_title": "Message undeliverable",
        "error_detail": "The number is not on WhatsApp.",
    }
    return StatusChange(**{**fields, **overrides})


def _examples(message) -> list[events.LiveEvent]:
    failed = MessageStatus.from_change(_change())
    return [
        failed,
        MessageStatus.from_change(
            _change(status="delivered", error_code="", error_title="", campaign_id=uuid.uuid4())
        ),
        MessageCreated.from_message(message),
        WidgetMessage.from_message(message),
        SocketError(code="rate_limited", message="Too many messages.", retry_after=42),
        Pong(),
        AgentEvents(events=[failed, MessageCreated.from_message(message)]),
    ]


def test_every_event_type_has_an_example_and_a_wire_shape(make_message, inbox):
    classes = {type(e) for e in _examples(make_message(inbox))}
    declared = {*AGENT_FRAMES.values(), *ACCOUNT_EVENTS.values(), *WIDGET_FRAMES.values()}
    assert classes == declared == set(WIRE)


def test_payload_is_the_dataclass_as_a_dict(make_message, inbox):
    """``as_payload`` builds the dict itself (``dataclasses.asdict`` deep-copies every value,
    a hot spot of the webhook path): the result must be exactly ``asdict``'s, type first."""
    for event in _examples(make_message(inbox)):
        if isinstance(event, AgentEvents):
            continue  # its events keep their own ``type`` (below)
        payload = event.as_payload()
        assert payload == {"type": type(event).type, **dataclasses.asdict(event)}
        assert list(payload)[0] == "type"
        error = getattr(event, "error", None)
        if error is not None:
            assert payload["error"] == {"code": error.code, "title": error.title}
            assert payload["error"] is not event.as_payload()["error"]  # a fresh dict each time


def test_each_event_round_trips_through_json(make_message, inbox):
    message = make_message(inbox, content="Grüße ✓✓")
    for event in _examples(message):
        assert dataclasses.is_dataclass(event) and type(event).__dataclass_params__.frozen
        payload = event.as_payload()
        decoded = json.loads(json.dumps(payload))
        assert decoded == payload, type(event).__name__
        # The type first, then exactly the dataclass's fields, each of its wire type.
        assert list(decoded)[0] == "type" and decoded["type"] == type(event).type
        fields = {f.name for f in dataclasses.fields(event)}
        assert set(decoded) - {"type"} == fields == set(WIRE[type(event)])
        for name, json_type in WIRE[type(event)].items():
            assert isinstance(decoded[name], json_type), (type(event).__name__, name)
            assert not isinstance(decoded[name], bool)
        # And the decoded fields are the dataclass's own values (nested ones as their dicts).
        for name in fields:
            value = getattr(event, name)
            if isinstance(value, list):
                assert decoded[name] == [item.as_payload() for item in value]
            elif dataclasses.is_dataclass(value):
                assert decoded[name] == dataclasses.asdict(value)
            else:
                assert decoded[name] == value, name
        assert check_frame(decoded, {type(event).type: type(event)}) is type(event)


def test_field_types_are_json_types_only():
    for event_class in WIRE:
        for name, hint in get_type_hints(event_class).items():
            if name == "type":
                continue
            text = str(hint)
            assert "datetime" not in text and "UUID" not in text, (event_class, name, hint)


def test_events_carry_the_model_values(make_message, inbox):
    message = make_message(inbox, content="Hi")
    created = MessageCreated.from_message(message)
    assert created.message_id == str(message.id)
    assert created.conversation_id == message.conversation_id
    assert created.tick == "pending" and created.status == "queued"
    assert created.created_at == message.created_at.isoformat()
    failed = MessageStatus.from_change(_change())
    assert failed.tick == "failed"
    assert failed.error == StatusError(code="131026", title="Message undeliverable")
    assert failed.status_updated_at == "2026-11-29T14:05:07.123456+00:00"
    # The detail stays out of the live event: the page reads the catalogue's words on re-read.
    assert "detail" not in json.dumps(failed.as_payload())
    # A campaign's message names its campaign (the campaign pages re-read only for theirs).
    assert failed.campaign_id is None
    campaign_id = uuid.uuid4()
    assert MessageStatus.from_change(_change(campaign_id=campaign_id)).campaign_id == str(
        campaign_id
    )


@pytest.mark.parametrize(
    "frame, problem",
    [
        ({"type": "message.status"}, "differ"),
        ({"type": "nope"}, "unknown event type"),
        ([], "JSON object"),
        (
            {**MessageStatus.from_change(_change()).as_payload(), "extra": 1},
            "differ",
        ),
        ({**MessageStatus.from_change(_change()).as_payload(), "version": "3"}, "expected int"),
        ({**MessageStatus.from_change(_change()).as_payload(), "version": True}, "expected int"),
        (
            {**MessageStatus.from_change(_change()).as_payload(), "error": {"code": "1"}},
            "differ",
        ),
    ],
)
def test_check_frame_rejects_what_the_schema_does_not_allow(frame, problem):
    with pytest.raises(SchemaError, match=problem):
        check_frame(frame, ACCOUNT_EVENTS)


def test_an_events_batch_is_checked_item_by_item():
    good = MessageStatus.from_change(_change()).as_payload()
    assert check_frame({"type": "events", "events": [good]}, AGENT_FRAMES) is AgentEvents
    with pytest.raises(SchemaError, match="events\\[1\\]"):
        check_frame({"type": "events", "events": [good, {"type": "pong"}]}, AGENT_FRAMES)


# ---------------------------------------------------------------------------------------------
# Every frame of a real flow, over the real ASGI stack and channel layer
# ---------------------------------------------------------------------------------------------


def _session(account) -> str:
    user = get_user_model().objects.create_user(username="ada", password="pw")
    Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _socket(path: str, cookie: str | None = None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected, path
    return communicator


async def _frames(communicator, schemas, count: int) -> list[dict]:
    frames = []
    while sum(len(f.get("events", [f])) for f in frames) < count:
        frame = await communicator.receive_json_from(timeout=5)
        check_frame(frame, schemas)
        if frame["type"] == "events":
            for event in frame["events"]:
                check_frame(event, ACCOUNT_EVENTS)
        frames.append(frame)
    return frames


def _flat(frames: list[dict]) -> list[dict]:
    return [e for f in frames for e in f.get("events", [f])]


@pytest.mark.django_db(transaction=True)
async def test_every_frame_of_a_real_flow_matches_its_schema(account, make_inbox, inbox):
    cookie = await sync_to_async(_session)(account)
    agent = await _socket("/ws/agent/", cookie)

    # An agent's reply in a WhatsApp conversation, then its statuses, then a failure.
    contact = await database_sync_to_async(inbox_services.contact_get_or_create)(
        inbox=inbox, address="+15550000001"
    )
    await database_sync_to_async(inbox_services.conversation_get_or_create)(
        inbox=inbox, contact=contact
    )
    message, _ = await database_sync_to_async(outbound.message_create_outgoing)(
        account=account, inbox=inbox, to="+15550000001", template={"name": "hello_world"}
    )
    for status, extra in (
        ("sent", {}),
        ("failed", {"error_code": "131026", "error_title": "Message undeliverable"}),
    ):
        await database_sync_to_async(status_services.message_status_report)(
            message=message, status=status, source=StatusEvent.Source.WEBHOOK, **extra
        )
    # A contact writes on the web widget.
    widget_inbox = await sync_to_async(make_inbox)(account, "web_widget")
    await database_sync_to_async(inbox_services.inbound_messages_store)(
        inbox=widget_inbox,
        inbound=[InboundMessage("web-1", "w-1", "Hello there", datetime.now(UTC))],
    )
    seen = _flat(await _frames(agent, AGENT_FRAMES, 4))
    assert [e["type"] for e in seen] == [
        "message.created",
        "message.status",
        "message.status",
        "message.created",
    ]
    assert [e.get("status") for e in seen[:3]] == ["queued", "sent", "failed"]
    assert seen[2]["error"] == {"code": "131026", "title": "Message undeliverable"}
    assert seen[3]["direction"] == "incoming"

    # The agent answers on the widget: the widget gets its frame, the agent its own events.
    widget_contact = await database_sync_to_async(
        lambda: widget_inbox.contacts.get(address="web-1")
    )()
    widget = await _socket(f"/ws/widget/{widget_inbox.id}/?token={widget_contact.token}")
    reply, _ = await database_sync_to_async(outbound.message_create_outgoing)(
        account=account, inbox=widget_inbox, to="web-1", content="How can I help?"
    )
    await database_sync_to_async(sending.message_send)(message_id=reply.id, attempt=1)
    (pushed,) = await _frames(widget, WIDGET_FRAMES, 1)
    assert pushed == WidgetMessage.from_message(reply).as_payload()
    await widget.send_json_to({"type": "ack", "message_ids": [str(reply.id)]})
    await widget.send_json_to({"type": "ping"})
    assert check_frame(await widget.receive_json_from(timeout=5), WIDGET_FRAMES) is Pong

    seen = _flat(await _frames(agent, AGENT_FRAMES, 3))
    assert [(e["type"], e["status"]) for e in seen] == [
        ("message.created", "queued"),
        ("message.status", "sent"),
        ("message.status", "delivered"),
    ]
    await agent.send_json_to({"type": "ping"})
    assert check_frame(await agent.receive_json_from(timeout=5), AGENT_FRAMES) is Pong
    await widget.disconnect()
    await agent.disconnect()
