"""The message as every REST endpoint and every integrator webhook shows it (DESIGN §7, §8).

One plain function, below both users of it: ``inbox.api.serializers.MessageSerializer``
returns it, and ``statuses.outgoing`` stores it in webhook events — so the domain never imports
the API layer, and the two shapes cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework.fields import DateTimeField

from inbox.models import Message
from statuses import errors

_DATETIME = DateTimeField()  # the API's ISO 8601 form ("…Z" for UTC), as every endpoint shows


def iso(value: datetime | None) -> str | None:
    return _DATETIME.to_representation(value)


def error_of(channel_type: str, code: str, title: str, detail: str) -> dict[str, Any] | None:
    """A failure as the API shows it: the provider's words, the catalogue's title and hint."""
    if not (code or title or detail):
        return None
    info = errors.error_info(channel_type, code) if code else None
    return {
        "code": code,
        "title": title or (info.title if info else ""),
        "detail": detail,
        "hint": info.hint if info else None,
    }


def message_representation(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "customer_message_id": message.customer_message_id,
        "provider_message_id": message.provider_message_id,
        "inbox": str(message.inbox_id),
        "channel": message.family,
        "channel_type": message.channel_type,
        "conversation": message.conversation_id,
        "direction": message.direction,
        "to": message.to_address,
        "content": message.content,
        "status": message.status.upper(),
        "tick": message.tick,
        "is_terminal": message.is_terminal,
        "error": error_of(
            message.channel_type, message.error_code, message.error_title, message.error_detail
        ),
        "attempt": message.attempt,
        "queued_at": iso(message.queued_at),
        "sent_at": iso(message.sent_at),
        "delivered_at": iso(message.delivered_at),
        "read_at": iso(message.read_at),
        "failed_at": iso(message.failed_at),
        "status_updated_at": iso(message.status_updated_at),
        "created_at": iso(message.created_at),
        "read_by_agent_at": iso(message.read_by_agent_at),
    }
