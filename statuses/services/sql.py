"""The PostgreSQL and SQLite forms of the write path's bulk statements (each one statement)."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import F

from inbox.models import Message
from inbox.rowsql import hot_cursor
from statuses import machine
from statuses.models import StatusEvent
from statuses.services.rows import MERGED_FIELDS, _NewEvent


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _advisory_lock(inbox_id: uuid.UUID, provider_ids: Iterable[str]) -> None:
    """Serialise writers on the same provider ids, so a status that arrives while its send
    response is being recorded is either seen by the send or sees the send — never parked
    forever. Keys are taken in sorted order: no deadlocks. (SQLite has one writer anyway.)"""
    keys = sorted({_lock_key(inbox_id, pid) for pid in provider_ids})
    if not keys or not _is_postgres():
        return
    with hot_cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
            [keys],
        )


def _lock_key(inbox_id: uuid.UUID, provider_id: str) -> int:
    return advisory_key(f"{inbox_id}:{provider_id}")


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory-lock key (a signed 64-bit integer) for ``name``."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Column, and its PostgreSQL array type for the unnest() form of the bulk insert.
_EVENT_COLUMNS = (
    ("inbox_id", "uuid"),
    ("message_id", "uuid"),
    ("attempt", "integer"),
    ("provider_message_id", "varchar"),
    ("correlation_id", "varchar"),
    ("status", "varchar"),
    ("raw_status", "varchar"),
    ("occurred_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("source", "varchar"),
    ("outcome", "varchar"),
    ("error_code", "varchar"),
    ("error_title", "varchar"),
    ("error_detail", "text"),
    ("dedupe_key", "varchar"),
    ("duplicate_count", "integer"),
    ("delivery_id", "bigint"),
)
# The columns that hold one value for the whole batch: the inbox and the time received.
_ONE_VALUE = frozenset(
    i for i, (name, _) in enumerate(_EVENT_COLUMNS) if name in ("inbox_id", "received_at")
)


def _insert_events(
    inbox_id: uuid.UUID, events: list[_NewEvent], now: datetime
) -> tuple[dict[str, int], int]:
    """Insert each event once; a known dedupe key only bumps its ``duplicate_count``.

    Returns ({dedupe_key: id} of newly stored events, number of duplicates). Rows go in in
    dedupe-key order so concurrent batches wait on each other in one order (no deadlocks).
    """
    if not events:
        return {}, 0
    repeats = Counter(e.dedupe_key for e in events)
    first_of_key: dict[str, _NewEvent] = {}
    for event in events:
        first_of_key.setdefault(event.dedupe_key, event)  # the one the merge counted
    unique = sorted(first_of_key.values(), key=lambda e: e.dedupe_key)
    within_batch = sum(repeats.values()) - len(repeats)
    rows = [
        (
            inbox_id,
            e.message_id,
            e.attempt,
            e.provider_message_id,
            e.correlation_id,
            e.status,
            e.raw_status,
            e.occurred_at,
            now,
            e.source,
            e.outcome,
            e.error_code,
            e.error_title,
            e.error_detail,
            e.dedupe_key,
            repeats[e.dedupe_key] - 1,
            e.delivery_id,
        )
        for e in unique
    ]
    table = StatusEvent._meta.db_table
    names = ", ".join(name for name, _ in _EVENT_COLUMNS)
    on_conflict = (
        " ON CONFLICT (inbox_id, dedupe_key) DO UPDATE SET duplicate_count = "
        f"{table}.duplicate_count + EXCLUDED.duplicate_count + 1 "
    )
    if _is_postgres():
        # One array per column (the inbox and the time received are one value for all): the
        # statement text is the same whatever the batch size, so neither the driver nor the
        # server re-parses thousands of placeholders.
        per_row = [
            (i, name, kind) for i, (name, kind) in enumerate(_EVENT_COLUMNS) if i not in _ONE_VALUE
        ]
        row_names = ", ".join(name for _, name, _ in per_row)
        arrays = ", ".join(f"%s::{kind}[]" for _, _, kind in per_row)
        sql = (
            f"INSERT INTO {table} (inbox_id, received_at, {row_names}) "
            f"SELECT %s::uuid, %s::timestamptz, u.* FROM unnest({arrays}) AS u({row_names}) "
            f"ORDER BY u.dedupe_key {on_conflict} RETURNING id, dedupe_key, (xmax = 0)"
        )
        columns = list(zip(*rows, strict=True))
        with hot_cursor() as cursor:
            cursor.execute(sql, [inbox_id, now, *(list(columns[i]) for i, _, _ in per_row)])
            returned = cursor.fetchall()
        inserted = {key: event_id for event_id, key, is_new in returned if is_new}
    else:
        # SQLite serialises writers, so "which keys existed" read first is exact.
        keys = [e.dedupe_key for e in unique]
        existing = set(
            StatusEvent.objects.filter(inbox_id=inbox_id, dedupe_key__in=keys).values_list(
                "dedupe_key", flat=True
            )
        )
        ops = connection.ops
        params = [
            value.hex
            if isinstance(value, uuid.UUID)
            else ops.adapt_datetimefield_value(value)
            if isinstance(value, datetime)
            else value
            for row in rows
            for value in row
        ]
        row_sql = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
        sql = (
            f"INSERT INTO {table} ({names}) VALUES "
            + ", ".join([row_sql] * len(rows))
            + on_conflict
            + "RETURNING id, dedupe_key"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            returned = cursor.fetchall()
        inserted = {key: event_id for event_id, key in returned if key not in existing}
    duplicates = within_batch + (len(unique) - len(inserted))
    return inserted, duplicates


def _write_merged(updates: list[tuple[dict, machine.Merged, bool]], now: datetime) -> None:
    """Write every changed message in one ``UPDATE … FROM unnest(…)`` statement."""
    table = Message._meta.db_table
    if not _is_postgres():
        for current, merged, status_changed in updates:
            values = {name: getattr(merged, name) for name in MERGED_FIELDS}
            if status_changed:
                values["status_updated_at"] = now
            Message.objects.filter(id=current["id"]).update(
                **values, version=F("version") + 1, updated_at=now
            )
        return
    columns = [
        [current["id"] for current, _, _ in updates],
        *([getattr(merged, name) for _, merged, _ in updates] for name in MERGED_FIELDS),
        [status_changed for _, _, status_changed in updates],
    ]
    sql = (
        f"UPDATE {table} AS m SET status = v.status, sent_at = v.sent_at, "
        "delivered_at = v.delivered_at, read_at = v.read_at, failed_at = v.failed_at, "
        "error_code = v.error_code, error_title = v.error_title, error_detail = v.error_detail, "
        "status_updated_at = CASE WHEN v.status_changed THEN %s ELSE m.status_updated_at END, "
        "updated_at = %s, version = m.version + 1 "
        "FROM unnest(%s::uuid[], %s::varchar[], %s::timestamptz[], %s::timestamptz[], "
        "%s::timestamptz[], %s::timestamptz[], %s::varchar[], %s::varchar[], %s::text[], "
        "%s::boolean[]) AS v(id, status, sent_at, delivered_at, read_at, failed_at, error_code, "
        "error_title, error_detail, status_changed) "
        "WHERE m.id = v.id"
    )
    with hot_cursor() as cursor:
        cursor.execute(sql, [now, now, *columns])
