"""What the status write path reads and writes: the locked message rows, the new events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef

from inbox.models import Message
from statuses.events import StatusChange
from statuses.models import StatusEvent, WebhookSubscription

Source = StatusEvent.Source
# Read with the message locks, so the hot path need not ask separately whether anyone
# subscribed to status webhooks.
_HAS_WEBHOOKS = Exists(
    WebhookSubscription.objects.filter(account_id=OuterRef("account_id"), is_active=True)
)
Outcome = StatusEvent.Outcome
# Provider statuses describe messages we sent: every look-up by provider id, correlation id or
# watermark, and every row lock, is limited to outgoing messages. An inbound message whose
# provider id equals the one a status names never takes that status (DESIGN §5.1).
_OUTGOING = Message.Direction.OUTGOING

# What a merge reads and writes on a message row.
MERGED_FIELDS = (
    "status",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "error_code",
    "error_title",
    "error_detail",
)
LOCKED_FIELDS = (
    "id",
    "account_id",
    "inbox_id",
    "conversation_id",
    "channel_type",
    "attempt",
    "provider_message_id",
    "version",
    "status_updated_at",
    "created_at",  # the floor of the lifecycle timestamps (machine.merge)
    "campaign_id",  # its counts change with the status (statuses.campaign_counts)
    *MERGED_FIELDS,
)


@dataclass
class ApplyResult:
    stored: int = 0
    duplicates: int = 0
    parked: int = 0
    stale: int = 0
    changes: list[StatusChange] = field(default_factory=list)


@dataclass
class _NewEvent:
    message_id: uuid.UUID | None
    attempt: int
    provider_message_id: str
    correlation_id: str
    status: str
    raw_status: str
    occurred_at: datetime
    source: str
    outcome: str
    error_code: str
    error_title: str
    error_detail: str
    dedupe_key: str
    delivery_id: int | None = None


def _messages_by_provider_id(
    inbox_id: uuid.UUID, provider_ids: list[str]
) -> dict[str, tuple[uuid.UUID, int]]:
    if not provider_ids:
        return {}
    rows = (
        Message.objects.filter(
            inbox_id=inbox_id, direction=_OUTGOING, provider_message_id__in=provider_ids
        )
        .values_list("provider_message_id", "id", "attempt")
        .order_by()
    )
    return {pid: (mid, attempt) for pid, mid, attempt in rows}


def _lock_messages(message_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Lock the rows in primary-key order (every writer does the same: no deadlocks)."""
    ids = sorted(message_ids)
    if not ids:
        return {}
    rows = (
        Message.objects.filter(id__in=ids, direction=_OUTGOING)
        .annotate(has_webhooks=_HAS_WEBHOOKS)
        .order_by("id")
        .select_for_update(of=("self",))
        .values(*LOCKED_FIELDS, "has_webhooks")
    )
    return {row["id"]: row for row in rows}


def _adopt_provider_ids(
    locked: dict[uuid.UUID, dict], provider_ids: dict[uuid.UUID, str], replace: bool = False
) -> None:
    for message_id, provider_id in provider_ids.items():
        current = locked.get(message_id)
        if current is None or (current["provider_message_id"] and not replace):
            continue
        if current["provider_message_id"] == provider_id:
            continue
        Message.objects.filter(id=message_id).update(provider_message_id=provider_id)
        current["provider_message_id"] = provider_id
