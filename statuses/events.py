"""The domain events of the write path: what changed, as frozen values (issue #11).

Services build them inside their transaction; ``statuses.publish`` hands them to the integrator
outbox (``statuses.outgoing``) at once and to the live channel (``channels_app.broadcast``)
after commit. Nothing here touches the database: the events are plain values, so a test can
build one, and a consumer cannot change what another one receives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: models stay below the events in the layers
    from inbox.models import Message


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A message whose merged state changed, as broadcast and sent to integrators."""

    message_id: uuid.UUID
    account_id: int
    conversation_id: int
    channel_type: str
    previous_status: str
    status: str
    version: int
    status_updated_at: datetime
    error_code: str
    error_title: str
    error_detail: str


@dataclass(frozen=True, slots=True)
class MessageCreated:
    """A message newly stored in a conversation (sent by an agent/API, or received)."""

    account_id: int
    message_id: uuid.UUID
    conversation_id: int
    direction: str
    content: str
    status: str
    tick: str
    version: int
    created_at: datetime
    status_updated_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageCreated:
        return cls(
            account_id=message.account_id,
            message_id=message.id,
            conversation_id=message.conversation_id,
            direction=message.direction,
            content=message.content,
            status=message.status,
            tick=message.tick,
            version=message.version,
            created_at=message.created_at,
            status_updated_at=message.status_updated_at,
        )

    def payload(self) -> dict[str, Any]:
        """The live-update shape of a message (DESIGN §9)."""
        return {
            "message_id": str(self.message_id),
            "conversation_id": self.conversation_id,
            "direction": self.direction,
            "content": self.content,
            "status": self.status,
            "tick": self.tick,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "status_updated_at": self.status_updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class WidgetMessage:
    """An agent's message accepted for a web-widget contact (the widget is the provider)."""

    contact_id: int
    message_id: uuid.UUID
    content: str
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> WidgetMessage:
        return cls(
            contact_id=message.conversation.contact_id,
            message_id=message.id,
            content=message.content,
            created_at=message.created_at,
        )

    def payload(self) -> dict[str, Any]:
        return {
            "type": "message",
            "message_id": str(self.message_id),
            "content": self.content,
            "created_at": self.created_at.isoformat(),
        }
