"""How messages and conversations look to the agent UI and the widget (plain dicts)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import QueryDict
from django.urls import reverse

from channels_app.routing import AGENT_SOCKET_PATH
from inbox import consent
from inbox.addresses import E164
from inbox.models import Account, Contact, Conversation, Inbox, Message
from statuses import errors, machine
from statuses.catalogue import CHANNELS, Family
from statuses.machine import RESENDABLE, Status, Tick
from statuses.models import StatusEvent

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


# The stage of the message's life each status marks: the ``<stage>_at`` time it sets.
STATUS_STAGE: dict[str, str] = {
    status: field.removesuffix("_at") for status, field in machine.TIMESTAMP_OF.items()
}

# The stages shown in the tick popover, in lifecycle order (each named like its status).
STAGE_LABELS: dict[str, str] = {
    stage: STATUS_LABELS[stage] for stage in ("queued", "sent", "delivered", "read", "failed")
}

# What each tick means: one wording for the legend and the tick popover; the tick is named
# after the status it stands for.
TICK_MEANINGS: dict[str, tuple[str, str]] = {
    Tick.PENDING: (
        STATUS_LABELS[Status.QUEUED],
        "waiting to go out, or waiting for the channel's answer.",
    ),
    Tick.SINGLE: (STATUS_LABELS[Status.SENT], "the channel accepted it."),
    Tick.DOUBLE: (STATUS_LABELS[Status.DELIVERED], "it reached the contact's device."),
    Tick.BLUE: (STATUS_LABELS[Status.READ], "the contact opened it."),
    Tick.FAILED: (STATUS_LABELS[Status.FAILED], "it did not arrive; the bubble says why."),
}


def status_time(message: Message) -> datetime:
    """The provider's time of the status the message is in (arrival time as a fallback)."""
    field = machine.TIMESTAMP_OF.get(message.status)
    stamp = getattr(message, field) if field else None
    return stamp or message.status_updated_at


def error_info(message: Message) -> dict[str, str] | None:
    """The failure reason with the provider catalogue's plain-language explanation and hint."""
    if message.status not in (Status.FAILED, Status.EXPIRED):
        return None
    known = (
        errors.error_info(message.channel_type, message.error_code) if message.error_code else None
    )
    if message.status == Status.EXPIRED and not message.error_code:
        title = "Not delivered in time"
        explanation = "The channel did not confirm delivery before the message expired."
        hint = "Check that the contact can still be reached, then resend."
    else:
        title = message.error_title or (known.title if known else "") or "Could not be sent"
        title = _without_code(title, message.error_code)
        explanation = known.explanation if known else message.error_detail
        hint = known.hint if known else ""
    retryable = errors.resend_helps(message.channel_type, message.error_code, when_unknown=True)
    if not retryable and not hint:
        hint = "Resending the same message will fail the same way."
    return {
        "code": message.error_code,
        "title": title,
        "detail": message.error_detail,
        "explanation": explanation,
        "hint": hint,
        "retryable": retryable,
    }


def _without_code(title: str, code: str) -> str:
    """Drop the code a provider repeats inside its title: "(#131009) Parameter … (131009)"."""
    if not code:
        return title
    quoted = re.escape(code)
    cleaned = re.sub(rf"^\s*\(#?{quoted}\)\s*|\s*\(#?{quoted}\)\s*$", "", title)
    return cleaned.strip() or title


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
        "stages": (stages := _stages(message)),
        "stages_json": json.dumps(stages),
        "error": error_info(message),
        "resendable": message.direction == Message.Direction.OUTGOING
        and message.status in RESENDABLE
        and errors.resend_helps(message.channel_type, message.error_code, when_unknown=True),
        # The contact deleted (unsent) this message: shown as "This message was deleted".
        "deleted": message.deleted_at is not None,
        # An inbound message an agent has read (DESIGN §14): a small "Seen" mark.
        "seen": message.read_by_agent_at is not None,
    }


def message_json(message: Message) -> dict[str, Any]:
    data = message_view(message)
    del data["created"], data["stages_json"]
    return data


def _language(template: dict) -> str:
    language = template.get("language", "")
    if isinstance(language, dict):
        return str(language.get("code", ""))
    return str(language)


# Channel filter choices in the conversation list: one per family.
FILTER_CHANNELS: list[tuple[str, str]] = [(f.value.lower(), f.label) for f in Family]


@dataclass(frozen=True)
class ListFilters:
    """The conversation list's search box and filters (query string: q, channel, failed, unread)."""

    q: str = ""
    channel: str = ""
    failed: bool = False
    unread: bool = False

    @classmethod
    def from_query(cls, query: QueryDict) -> ListFilters:
        channel = query.get("channel", "").lower()
        return cls(
            q=query.get("q", "").strip()[:200],
            channel=channel if channel in dict(FILTER_CHANNELS) else "",
            failed=query.get("failed") in ("1", "on", "true"),
            unread=query.get("unread") in ("1", "on", "true"),
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.channel or self.failed or self.unread)


def conversations_for(
    account: Account, limit: int = 100, filters: ListFilters | None = None
) -> list[dict[str, Any]]:
    """The account's conversations, most recent first, each with its last message."""
    last_id = Subquery(
        Message.objects.filter(conversation=OuterRef("pk"))
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    queryset = Conversation.objects.filter(account=account)
    if filters is not None:
        queryset = _filtered(queryset, filters)
    conversations = list(
        queryset.select_related("contact", "inbox")
        .annotate(last_message_id=last_id)
        .order_by("-last_message_at", "-id")[:limit]
    )
    ids = [c.last_message_id for c in conversations if c.last_message_id]
    last = {m.id: m for m in Message.objects.filter(id__in=ids)}
    return [conversation_view(c, last.get(c.last_message_id)) for c in conversations]


def _filtered(queryset: Any, filters: ListFilters) -> Any:
    if filters.q:
        text = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=filters.q)
        queryset = queryset.filter(
            Q(contact__name__icontains=filters.q)
            | Q(contact__address__icontains=filters.q)
            | Exists(text)
        )
    if filters.channel:
        family = filters.channel.upper()
        types = [t for t, c in CHANNELS.items() if c.family == family]
        queryset = queryset.filter(inbox__channel_type__in=types)
    if filters.failed:
        failed = Message.objects.filter(
            conversation=OuterRef("pk"),
            direction=Message.Direction.OUTGOING,
            status__in=RESENDABLE,
        )
        queryset = queryset.filter(Exists(failed))
    if filters.unread:
        queryset = queryset.filter(unread_count__gt=0)
    return queryset


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
        "max_length": max_length(conversation.inbox),
    }


def opt_out_banner(conversation: Conversation) -> str:
    """Why an opted-out contact cannot be written to (shown instead of the compose box, which
    could only fail); empty when they can."""
    contact = conversation.contact
    return consent.opt_out_sentence(contact) if contact.opted_out else ""


# The longest text each channel takes in one message (provider documentation), capped at what
# the agent form accepts.
TEXT_LIMITS: dict[str, int] = {
    "twilio_sms": 1600,
    "twilio_whatsapp": 1600,
    "bandwidth_sms": 2048,
    "facebook": 2000,
    "instagram": 1000,
}
AGENT_TEXT_LIMIT = 4096


def max_length(inbox: Inbox) -> int:
    return min(TEXT_LIMITS.get(inbox.channel_type, AGENT_TEXT_LIMIT), AGENT_TEXT_LIMIT)


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def address_problem(inbox: Inbox, address: str) -> str:
    """Why ``address`` cannot be a contact of ``inbox`` ("" when it can)."""
    if inbox.family in (Family.WHATSAPP, Family.SMS) and not E164.match(address):
        return "Give the phone number in international format, e.g. +14155550123."
    if inbox.family == Family.EMAIL and not EMAIL.match(address):
        return "Give an email address."
    if inbox.family == Family.WEB:
        return "Web widget conversations start from the contact's side."
    return ""


def start_inboxes(account: Account) -> list[dict[str, Any]]:
    """The inboxes an agent can start a conversation in, and what each one needs."""
    hints = {
        Family.WHATSAPP: "International format, e.g. +14155550123",
        Family.SMS: "International format, e.g. +14155550123",
        Family.EMAIL: "An email address",
        Family.TELEGRAM: "The Telegram chat id",
        Family.FACEBOOK: "The contact's page-scoped id (PSID)",
        Family.INSTAGRAM: "The contact's Instagram-scoped id",
    }
    return [
        {
            "id": inbox.id,
            "name": inbox.name,
            "channel": inbox.get_channel_type_display(),
            # A channel with a 24-hour window allows only a template to a contact who has not
            # written (a new conversation): the form asks for one.
            "needs_template": inbox.channel.has_service_window,
            "address_hint": hints.get(inbox.family, "The contact's id on this channel"),
        }
        for inbox in Inbox.objects.filter(account=account).order_by("name")
        if inbox.family != Family.WEB
    ]


def contact_panel(conversation: Conversation) -> dict[str, Any]:
    contact = conversation.contact
    return {
        "name": contact.name,
        "address": contact.address,
        "channel": conversation.inbox.get_channel_type_display(),
        "inbox": conversation.inbox.name,
        "last_seen": contact.last_inbound_at,
        "conversations": Conversation.objects.filter(
            account_id=conversation.account_id, contact__address=contact.address
        ).count(),
        "consent": _consent_words(contact),
    }


def _consent_words(contact: Contact) -> str:
    if contact.opted_out:
        return f"Opted out ({contact.get_opt_out_source_display()})"
    if contact.marketing_opted_out:
        return "Stopped marketing messages"
    return "No opt-out"


def tick_legend() -> list[dict[str, str]]:
    return [
        {"tick": str(tick), "name": name, "meaning": meaning}
        for tick, (name, meaning) in TICK_MEANINGS.items()
    ]


def agent_config() -> dict[str, Any]:
    """What the page's modules need from the server, read with ``json_script`` (no inline
    script): the words for statuses, stages and ticks, and the URLs, with ``{id}`` to fill."""
    return {
        "labels": {str(k): v for k, v in STATUS_LABELS.items()},
        "stages": STAGE_LABELS,
        "status_stage": {str(k): v for k, v in STATUS_STAGE.items()},
        "meanings": {str(tick): meaning for tick, (_, meaning) in TICK_MEANINGS.items()},
        "urls": {
            "resend": _url_pattern("inbox:resend", _SAMPLE_UUID),
            "events": _url_pattern("inbox:events", _SAMPLE_UUID),
            "messages": _url_pattern("inbox:conversation-messages", _SAMPLE_PK),
            "bubbles": _url_pattern("inbox:conversation-bubbles", _SAMPLE_PK),
            "read": _url_pattern("inbox:mark-read", _SAMPLE_PK),
            "list": reverse("inbox:conversation-list"),
            "login": reverse("inbox:login"),
            "socket": f"/{AGENT_SOCKET_PATH}",
        },
    }


_SAMPLE_PK = 918273645
_SAMPLE_UUID = uuid.UUID(int=0x5EED)


def _url_pattern(name: str, sample: int | uuid.UUID) -> str:
    """The view's URL with ``{id}`` where the object's id goes (the page fills it in)."""
    return reverse(name, args=[sample]).replace(str(sample), "{id}")


def _stages(message: Message) -> dict[str, str | None]:
    """When the message reached each stage (provider times), for the tick popover."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "queued": iso(message.queued_at or message.created_at),
        "sent": iso(message.sent_at),
        "delivered": iso(message.delivered_at),
        "read": iso(message.read_at),
        "failed": iso(message.failed_at),
    }


# Who "the provider" is in plain words, per channel type ("Accepted by WhatsApp").
PROVIDER_NAMES: dict[str, str] = {
    "whatsapp_cloud": "WhatsApp",
    "whatsapp_360dialog": "360dialog",
    "twilio_whatsapp": "Twilio",
    "twilio_sms": "Twilio",
    "bandwidth_sms": "Bandwidth",
    "facebook": "Messenger",
    "instagram": "Instagram",
    "tiktok": "TikTok",
    "telegram": "Telegram",
    "line": "LINE",
    "viber": "Viber",
    "email": "the mail server",
    "api": "your integration",
    "web_widget": "the web widget",
}

# Where "delivered" means the message arrived, per family.
DELIVERED_TO: dict[str, str] = {
    "EMAIL": "Delivered to the recipient's mail server",
    "WEB": "Delivered to the contact's browser",
    "API": "Delivered (reported by your integration)",
}

# Lifecycle rank inside one attempt: the send response first, then the statuses as a message
# lives them, so rows of the same second never read sent → read → delivered.
_LIFECYCLE = {
    Status.QUEUED: 1,
    Status.UNKNOWN: 2,
    Status.SENT: 3,
    Status.RECEIVED: 4,
    Status.DELIVERED: 5,
    Status.READ: 6,
    Status.FAILED: 7,
    Status.EXPIRED: 7,
    Status.DELETED: 8,
}


def timeline(message: Message, events: list[StatusEvent]) -> list[dict[str, Any]]:
    """The status history in lifecycle order, each row in plain words with both clocks."""
    ordered = sorted(
        events,
        key=lambda e: (
            e.attempt,
            0 if e.source == StatusEvent.Source.SEND else _LIFECYCLE.get(e.status, 9),
            e.occurred_at,
            e.id,
        ),
    )
    return [timeline_row(message, e) for e in ordered]


def timeline_row(message: Message, event: StatusEvent) -> dict[str, Any]:
    provider = PROVIDER_NAMES.get(message.channel_type, "the provider")
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "attempt": event.attempt,
        "status": event.status,
        "raw_status": event.raw_status,
        "source": event.get_source_display(),
        "outcome": event.get_outcome_display(),
        "what": _what_happened(message, event, provider),
        "effect": _effect(event),
        "current": event.attempt == message.attempt,
        "error": (
            {
                "code": event.error_code,
                "title": _without_code(event.error_title, event.error_code),
                "detail": event.error_detail,
            }
            if event.error_code or event.error_title
            else None
        ),
        "duplicates": event.duplicate_count,
    }


def _what_happened(message: Message, event: StatusEvent, provider: str) -> str:
    Source = StatusEvent.Source
    if event.source == Source.SEND:
        if event.status == Status.FAILED:
            return f"Refused by {provider}"
        if event.status == Status.UNKNOWN:
            return f"No answer from {provider}: the message may or may not have gone out"
        return f"Accepted by {provider}"
    if event.source == Source.SWEEP:
        return "Expired: no delivery confirmation in time"
    words = {
        Status.QUEUED: "Queued",
        Status.UNKNOWN: "Waiting for confirmation",
        Status.SENT: f"Sent by {provider}",
        Status.RECEIVED: "Received by the carrier",
        Status.DELIVERED: DELIVERED_TO.get(_family(message), "Delivered to the phone"),
        Status.READ: "Read by the contact",
        Status.FAILED: "Failed",
        Status.EXPIRED: "Expired",
        Status.DELETED: "Deleted by the contact",
    }.get(event.status)
    return words or f"Unrecognised report “{event.raw_status}” — kept, changes nothing"


def _effect(event: StatusEvent) -> str:
    Outcome = StatusEvent.Outcome
    note = {
        Outcome.APPLIED: "",
        Outcome.RECORDED: "Already known or older — no change",
        Outcome.PARKED: "Arrived before the send response — waiting to be matched",
        Outcome.UNMATCHED: "Never matched a message",
        Outcome.STALE: "For an earlier attempt — ignored",
    }.get(event.outcome, "")
    if event.duplicate_count:
        times = "once" if event.duplicate_count == 1 else f"{event.duplicate_count} times"
        note = " · ".join(filter(None, [note, f"Duplicate report ({times}) — ignored"]))
    return note


def _family(message: Message) -> str:
    channel = CHANNELS.get(message.channel_type)
    return channel.family if channel else ""
