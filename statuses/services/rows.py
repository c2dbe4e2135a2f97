"""What the status write path reads and writes: the locked message rows, the new events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import Exists, OuterRef

from inbox.models import Message
from inbox.rowsql import hot_cursor, insert_values, insert_values_parts
from statuses.events import StatusChange
from statuses.models import StatusEvent, WebhookDelivery, WebhookSubscription

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
    if connection.vendor == "postgresql":
        with hot_cursor() as cursor:
            cursor.execute(_by_provider_id_sql(), [inbox_id, list(provider_ids)])
            rows = cursor.fetchall()
    else:
        rows = (
            Message.objects.filter(
                inbox_id=inbox_id, direction=_OUTGOING, provider_message_id__in=provider_ids
            )
            .values_list("provider_message_id", "id", "attempt")
            .order_by()
        )
    return {pid: (mid, attempt) for pid, mid, attempt in rows}


Found = dict[uuid.UUID, dict[str, tuple[uuid.UUID, int]]]  # inbox → provider id → (id, attempt)


def deliveries_store_and_find(
    deliveries: list[dict], wanted: list[tuple[uuid.UUID, str]]
) -> tuple[list[int], Found | None]:
    """Store a webhook batch's delivery records (values by field, ``rowsql.insert_values``) and
    look up the outgoing messages its statuses name (``wanted``: inbox and provider id), in one
    statement on PostgreSQL: the new ids in order, and what was found by inbox (what
    ``_messages_by_provider_id`` would find; ``status_updates_apply(found=…)`` then skips its
    look-up). Neither takes a lock, so nothing about the lock order changes; it saves a batch a
    round trip. Elsewhere: the records only, and None (each inbox looks its messages up)."""
    if connection.vendor != "postgresql" or not deliveries:
        return insert_values(WebhookDelivery, deliveries), None
    insert, params = insert_values_parts(WebhookDelivery, deliveries)
    with hot_cursor() as cursor:
        cursor.execute(
            _store_and_find_sql(insert),
            [*params, [inbox_id for inbox_id, _ in wanted], [pid for _, pid in wanted]],
        )
        rows = cursor.fetchall()
    found: Found = {}
    for _, inbox_id, provider_id, message_id, attempt in rows:
        if message_id is not None:
            found.setdefault(inbox_id, {})[provider_id] = (message_id, attempt)
    return list(rows[0][0]), found


@cache
def _store_and_find_sql(insert: str) -> str:
    # Ids are numbered in the order rows are inserted, so ordered they follow the input.
    return (
        f"WITH d AS ({insert}) "  # noqa: S608
        f"SELECT ARRAY(SELECT d.id FROM d ORDER BY d.id), m.* FROM (VALUES (1)) AS one (x) "
        f"LEFT JOIN (SELECT m.{_column('inbox_id')}, m.{_column('provider_message_id')}, "
        f"m.{_column('id')}, m.{_column('attempt')} FROM {_quote(Message._meta.db_table)} m "
        f"JOIN unnest(%s::uuid[], %s::varchar[]) AS w (inbox_id, provider_id) "
        f"ON m.{_column('inbox_id')} = w.inbox_id "
        f"AND m.{_column('provider_message_id')} = w.provider_id "
        f"WHERE m.{_column('direction')} = '{_OUTGOING}') AS m ON true"
    )


def _lock_messages(message_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """Lock the rows in primary-key order (every writer does the same: no deadlocks)."""
    ids = sorted(message_ids)
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        with hot_cursor() as cursor:
            cursor.execute(_lock_sql(), [ids])
            keys = (*LOCKED_FIELDS, "has_webhooks")
            return {row[0]: dict(zip(keys, row, strict=True)) for row in cursor.fetchall()}
    rows = (
        Message.objects.filter(id__in=ids, direction=_OUTGOING)
        .annotate(has_webhooks=_HAS_WEBHOOKS)
        .order_by("id")
        .select_for_update(of=("self",))
        .values(*LOCKED_FIELDS, "has_webhooks")
    )
    return {row["id"]: row for row in rows}


# The same two statements as the ORM's queries above, written once: on the hot path the ORM's
# query building and its IN lists of one placeholder per id cost more than the statements.
# Constants are in the text, so the partial unique index on provider ids is always usable.


@cache
def _by_provider_id_sql() -> str:
    return (
        f"SELECT {_column('provider_message_id')}, {_column('id')}, {_column('attempt')} "  # noqa: S608
        f"FROM {_quote(Message._meta.db_table)} WHERE {_column('inbox_id')} = %s "
        f"AND {_column('direction')} = '{_OUTGOING}' "
        f"AND {_column('provider_message_id')} = ANY(%s::varchar[])"
    )


@cache
def _lock_sql() -> str:
    subscriptions = WebhookSubscription._meta
    columns = ", ".join(f"m.{_column(name)}" for name in LOCKED_FIELDS)
    return (
        f"SELECT {columns}, EXISTS (SELECT 1 FROM {_quote(subscriptions.db_table)} s "  # noqa: S608
        f"WHERE s.{_quote(subscriptions.get_field('account').column)} = m.{_column('account_id')} "
        f"AND s.{_quote(subscriptions.get_field('is_active').column)}) "
        f"FROM {_quote(Message._meta.db_table)} m WHERE m.{_column('id')} = ANY(%s::uuid[]) "
        f"AND m.{_column('direction')} = '{_OUTGOING}' ORDER BY m.{_column('id')} FOR UPDATE OF m"
    )


def _column(name: str) -> str:
    return _quote(Message._meta.get_field(name).column)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


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
