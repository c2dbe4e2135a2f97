"""The wire shape of every frame our WebSockets send, one frozen dataclass per event type.

Modelled on Zulip's ``event_types.py``: each event has one schema, built in one place, and the
tests check every frame a real flow puts on a socket against it (``check_frame``). Fields hold
JSON types only (times as ISO 8601 strings), so ``json.loads(json.dumps(event.as_payload()))``
gives back exactly the dataclass's fields.

The agent socket (``/ws/agent/``) sends ``{"type": "events", "events": [...]}`` batches of
``MessageStatus`` and ``MessageCreated``, and ``Pong``. The widget socket
(``/ws/widget/…``) sends ``WidgetMessage``, ``SocketError`` and ``Pong``.
``static/inbox/socket.js`` reads these shapes; keep the two in step.
"""

from __future__ import annotations

import copy
import dataclasses
import types
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Union, get_args, get_origin, get_type_hints

from statuses.machine import tick_for

if TYPE_CHECKING:
    from inbox.models import Message
    from statuses.events import StatusChange


@dataclass(frozen=True)
class LiveEvent:
    """Base of every frame: ``type`` is a class constant, written first in the payload."""

    type: ClassVar[str]

    def as_payload(self) -> dict[str, Any]:
        return {"type": self.type, **_as_dict(self)}


def _as_dict(event: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` for our events, whose fields hold JSON values: the same dict,
    without ``asdict``'s deep copy of every value (one ``message.status`` per changed message:
    a 100-status webhook spent more in ``asdict`` than in its broadcast)."""
    return {name: _json_value(getattr(event, name)) for name in _field_names(type(event))}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value  # immutable: nothing to copy
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _as_dict(value)
    return copy.deepcopy(value)


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class StatusError:
    """Why a message failed, as the provider said it (the catalogue's words come on re-read)."""

    code: str
    title: str


@dataclass(frozen=True)
class MessageStatus(LiveEvent):
    """A message's merged status changed (after the status transaction committed)."""

    type: ClassVar[str] = "message.status"

    message_id: str
    conversation_id: int
    status: str
    tick: str
    error: StatusError | None
    status_updated_at: str
    version: int
    # The campaign the message belongs to, if any: the campaign pages re-read on their own.
    campaign_id: str | None

    @classmethod
    def from_change(cls, change: StatusChange) -> MessageStatus:
        error = None
        if change.error_code or change.error_title:
            error = StatusError(code=change.error_code, title=change.error_title)
        return cls(
            message_id=str(change.message_id),
            conversation_id=change.conversation_id,
            status=change.status,
            tick=tick_for(change.status),
            error=error,
            status_updated_at=change.status_updated_at.isoformat(),
            version=change.version,
            campaign_id=str(change.campaign_id) if change.campaign_id else None,
        )


@dataclass(frozen=True)
class MessageCreated(LiveEvent):
    """A message was stored: an agent's or integrator's send, or one the contact wrote."""

    type: ClassVar[str] = "message.created"

    message_id: str
    conversation_id: int
    direction: str
    content: str
    status: str
    tick: str
    version: int
    created_at: str
    status_updated_at: str

    @classmethod
    def from_message(cls, message: Message) -> MessageCreated:
        return cls(
            message_id=str(message.id),
            conversation_id=message.conversation_id,
            direction=message.direction,
            content=message.content,
            status=message.status,
            tick=tick_for(message.status),
            version=message.version,
            created_at=message.created_at.isoformat(),
            status_updated_at=message.status_updated_at.isoformat(),
        )


@dataclass(frozen=True)
class AgentEvents(LiveEvent):
    """The agent socket's frame: a batch of account events, in commit order."""

    type: ClassVar[str] = "events"

    events: list[MessageStatus | MessageCreated] = field(default_factory=list)

    def as_payload(self) -> dict[str, Any]:
        # Each event keeps its own ``type``, which ``asdict`` alone would drop.
        return {"type": self.type, "events": [event.as_payload() for event in self.events]}


@dataclass(frozen=True)
class WidgetMessage(LiveEvent):
    """An agent's reply, pushed to the contact's widget once the send is recorded."""

    type: ClassVar[str] = "message"

    message_id: str
    content: str
    created_at: str

    @classmethod
    def from_message(cls, message: Message) -> WidgetMessage:
        return cls(
            message_id=str(message.id),
            content=message.content,
            created_at=message.created_at.isoformat(),
        )


@dataclass(frozen=True)
class SocketError(LiveEvent):
    """Why the server is about to close the socket (e.g. ``rate_limited``)."""

    type: ClassVar[str] = "error"

    code: str
    message: str
    retry_after: int


@dataclass(frozen=True)
class Pong(LiveEvent):
    """The answer to a client's ``{"type": "ping"}``."""

    type: ClassVar[str] = "pong"


AGENT_FRAMES: dict[str, type[LiveEvent]] = {e.type: e for e in (AgentEvents, Pong)}
ACCOUNT_EVENTS: dict[str, type[LiveEvent]] = {e.type: e for e in (MessageStatus, MessageCreated)}
WIDGET_FRAMES: dict[str, type[LiveEvent]] = {e.type: e for e in (WidgetMessage, SocketError, Pong)}


class SchemaError(ValueError):
    """A frame that does not match its event's schema."""


def check_frame(payload: Any, schemas: dict[str, type[LiveEvent]]) -> type[LiveEvent]:
    """Check a decoded frame against the schema its ``type`` names; return that event class.

    Exact: no missing field, no extra field, every value of its declared type (nested
    dataclasses and ``list[...]`` included). Raise ``SchemaError`` otherwise.
    """
    if not isinstance(payload, dict):
        raise SchemaError(f"a frame is a JSON object, not {type(payload).__name__}")
    kind = payload.get("type")
    event_class = schemas.get(kind)  # type: ignore[arg-type]
    if event_class is None:
        raise SchemaError(f"unknown event type {kind!r}; expected one of {sorted(schemas)}")
    body = {k: v for k, v in payload.items() if k != "type"}
    _check_dataclass(body, event_class, kind)
    return event_class


def _check_dataclass(value: Any, cls: type, where: str) -> None:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: expected an object, got {type(value).__name__}")
    hints = get_type_hints(cls)
    expected = {f.name for f in dataclasses.fields(cls)}
    if set(value) != expected:
        raise SchemaError(
            f"{where}: fields {sorted(value)} differ from the schema's {sorted(expected)}"
        )
    for name in expected:
        _check_value(value[name], hints[name], f"{where}.{name}")


def _check_value(value: Any, hint: Any, where: str) -> None:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(hint):
            try:
                _check_value(value, option, where)
                return
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(" / ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = get_args(hint)
        for i, element in enumerate(value):
            _check_value(element, item, f"{where}[{i}]")
        return
    if hint is type(None):
        if value is not None:
            raise SchemaError(f"{where}: expected null, got {value!r}")
        return
    if isinstance(hint, type) and issubclass(hint, LiveEvent):
        if not isinstance(value, dict) or value.get("type") != hint.type:
            raise SchemaError(f"{where}: expected a {hint.type!r} event")
        _check_dataclass({k: v for k, v in value.items() if k != "type"}, hint, where)
        return
    if dataclasses.is_dataclass(hint):
        _check_dataclass(value, hint, where)
        return
    # bool is an int in Python, never in a schema.
    if isinstance(value, bool) is not (hint is bool) or not isinstance(value, hint):
        raise SchemaError(f"{where}: expected {hint.__name__}, got {value!r}")
