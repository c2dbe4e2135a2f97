"""How messages and conversations look to the agent UI and the widget (plain dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Subquery

from inbox.models import Account, Conversation, Message
from statuses import providers
from statuses.machine import RESENDABLE, Status

# The label a screen reader and the tooltip give each status ("Delivered 14:02:11").
STATUS_LABELS: dict[str, str] = {
    Status.QUEUED: "Queued",
    Status.UNKNOWN: "Waiting for confirmation",
    Status.SENT: "Sent",
    Status.RECEIVED: "Sent",
    Status.DELIVERED: "Delivered",
    Status.READ: "Read",
    Status.FAILED: "Failed",
    Status.EXPIRED: "Expired",
    Status.DELETED: "Deleted",
}


def status_time(message: Message) -> datetime:
    """The provider's time of the status the message is in (arrival time as a fallback)."""
    stamp = {
        Status.SENT: message.sent_at,
        Status.RECEIVED: message.sent_at,
        Status.DELIVERED: message.delivered_at,
        Status.READ: message.read_at,
        Status.FAILED: message.failed_at,
        Status.EXPIRED: message.failed_at,
    }.get(message.status)
    return stamp or message.status_updated_at


def error_info(message: Message) -> dict[str, str] | None:
    """The failure reason with the provider catalogue's plain-language explanation and hint."""
    if message.status not in (Status.FAILED, Status.EXPIRED):
        return None
    catalogue = getattr(providers.REGISTRY.get(message.channel_type), "ERRORS", {})
    known = catalogue.get(message.error_code) if message.error_code else None
    if message.status == Status.EXPIRED and not message.error_code:
        title = "Not delivered in time"
        explanation = "The channel did not confirm delivery before the message expired."
        hint = "Check that the contact can still be reached, then resend."
    else:
        title = message.error_title or (known.title if known else "") or "Could not be sent"
        explanation = known.explanation if known else message.error_detail
        hint = known.hint if known else ""
    return {
        "code": message.error_code,
        "title": title,
        "detail": message.error_detail,
        "explanation": explanation,
        "hint": hint,
    }


def message_view(message: Message) -> dict[str, Any]:
    at = status_time(message)
    template = message.template or None
    return {
        "id": str(message.id),
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "outgoing": message.direction == Message.Direction.OUTGOING,
        "content": message.content,
        "template": (
            {"name": template.get("name", ""), "language": _language(template)}
            if isinstance(template, dict)
            else None
        ),
        "created_at": message.created_at.isoformat(),
        "created": message.created_at,
        "status": message.status,
        "tick": message.tick,
        "version": message.version,
        "attempt": message.attempt,
        "label": f"{STATUS_LABELS[message.status]} {at:%H:%M:%S}",
        "status_label": STATUS_LABELS[message.status],
        "at": at.isoformat(),
        "error": error_info(message),
        "resendable": message.status in RESENDABLE,
        # The contact deleted (unsent) this message: shown as "This message was deleted".
        "deleted": message.deleted_at is not None,
    }


def message_json(message: Message) -> dict[str, Any]:
    data = message_view(message)
    del data["created"]
    return data


def _language(template: dict) -> str:
    language = template.get("language", "")
    if isinstance(language, dict):
        return str(language.get("code", ""))
    return str(language)


def conversations_for(account: Account, limit: int = 100) -> list[dict[str, Any]]:
    """The account's conversations, most recent first, each with its last message."""
    last_id = Subquery(
        Message.objects.filter(conversation=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    conversations = list(
        Conversation.objects.filter(account=account)
        .select_related("contact", "inbox")
        .annotate(last_message_id=last_id)
        .order_by("-last_message_at", "-id")[:limit]
    )
    ids = [c.last_message_id for c in conversations if c.last_message_id]
    last = {m.id: m for m in Message.objects.filter(id__in=ids)}
    return [conversation_view(c, last.get(c.last_message_id)) for c in conversations]


def conversation_view(conversation: Conversation, last: Message | None) -> dict[str, Any]:
    inbox = conversation.inbox
    return {
        "id": conversation.id,
        "contact": str(conversation.contact),
        "inbox_name": inbox.name,
        "channel_type": inbox.channel_type,
        "channel_label": inbox.get_channel_type_display(),
        "family": inbox.family,
        "family_slug": inbox.family.lower(),
        "unread_count": conversation.unread_count,
        "last_message_at": conversation.last_message_at,
        "last_message": message_view(last) if last else None,
    }


def compose_state(conversation: Conversation) -> dict[str, Any]:
    """Whether free text is allowed now (24-hour window) and whether templates are possible."""
    has_window = conversation.inbox.channel.has_service_window
    return {
        "window_closed": has_window and not conversation.service_window_open(),
        "templates": conversation.inbox.family == "WHATSAPP",
    }
