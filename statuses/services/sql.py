"""The PostgreSQL and SQLite forms of the write path's bulk statements (each one statement)."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import cache

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


_ON_CONFLICT = (
    " ON CONFLICT (inbox_id, dedupe_key) DO UPDATE SET duplicate_count = "
    f"{StatusEvent._meta.db_table}.duplicate_count + EXCLUDED.duplicate_count + 1 "
)


def _event_rows(
    inbox_id: uuid.UUID, events: list[_NewEvent], now: datetime
) -> tuple[list[_NewEvent], list[tuple], int]:
    """The distinct events (the first of each dedupe key, in key order), their rows in
    ``_EVENT_COLUMNS`` order, and how many of ``events`` repeated a key within the batch."""
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
    return unique, rows, within_batch


# The event columns that hold one value per row (the others: one value for the whole batch).
_PER_ROW = tuple(i for i in range(len(_EVENT_COLUMNS)) if i not in _ONE_VALUE)


def _events_insert(inbox_id: uuid.UUID, rows: list[tuple], now: datetime) -> tuple[str, list]:
    """The PostgreSQL ``INSERT`` of the event rows, returning ``id, dedupe_key, is_new``."""
    columns = list(zip(*rows, strict=True))
    return _events_insert_sql(), [inbox_id, now, *(list(columns[i]) for i in _PER_ROW)]


@cache
def _events_insert_sql() -> str:
    """One array per column (the inbox and the time received are one value for all): the
    statement text is the same whatever the batch size, so neither the driver nor the server
    re-parses thousands of placeholders."""
    table = StatusEvent._meta.db_table
    row_names = ", ".join(_EVENT_COLUMNS[i][0] for i in _PER_ROW)
    arrays = ", ".join(f"%s::{_EVENT_COLUMNS[i][1]}[]" for i in _PER_ROW)
    return (
        f"INSERT INTO {table} (inbox_id, received_at, {row_names}) "
        f"SELECT %s::uuid, %s::timestamptz, u.* FROM unnest({arrays}) AS u({row_names}) "
        f"ORDER BY u.dedupe_key {_ON_CONFLICT} RETURNING id, dedupe_key, (xmax = 0) AS is_new"
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
    unique, rows, within_batch = _event_rows(inbox_id, events, now)
    if _is_postgres():
        sql, params = _events_insert(inbox_id, rows, now)
        with hot_cursor() as cursor:
            cursor.execute(sql, params)
            returned = cursor.fetchall()
        inserted = {key: event_id for event_id, key, is_new in returned if is_new}
    else:
        # SQLite serialises writers, so "which keys existed" read first is exact.
        table = StatusEvent._meta.db_table
        names = ", ".join(name for name, _ in _EVENT_COLUMNS)
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
            + _ON_CONFLICT
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
    if not _is_postgres():
        for current, merged, status_changed in updates:
            values = {name: getattr(merged, name) for name in MERGED_FIELDS}
            if status_changed:
                values["status_updated_at"] = now
            Message.objects.filter(id=current["id"]).update(
                **values, version=F("version") + 1, updated_at=now
            )
        return
    sql, params = _merged_update(updates, now)
    with hot_cursor() as cursor:
        cursor.execute(sql, params)


def _merged_update(
    updates: list[tuple[dict, machine.Merged, bool]], now: datetime
) -> tuple[str, list]:
    """The PostgreSQL ``UPDATE`` of the merged messages (its ``WHERE`` may be extended)."""
    columns = [
        [current["id"] for current, _, _ in updates],
        *([getattr(merged, name) for _, merged, _ in updates] for name in MERGED_FIELDS),
        [status_changed for _, _, status_changed in updates],
    ]
    return _merged_update_sql(), [now, now, *columns]


@cache
def _merged_update_sql() -> str:
    return (
        f"UPDATE {Message._meta.db_table} AS m SET status = v.status, sent_at = v.sent_at, "
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


@cache
def _insert_events_and_write_sql() -> str:
    """The events' ``INSERT`` and the messages' ``UPDATE``, the latter only if every counted
    key is among the keys the former stored."""
    return (
        f"WITH ins AS ({_events_insert_sql()}), "
        f"upd AS ({_merged_update_sql()} AND NOT EXISTS ("
        "SELECT 1 FROM unnest(%s::varchar[]) AS counted(key) WHERE NOT EXISTS ("
        "SELECT 1 FROM ins WHERE ins.dedupe_key = counted.key AND ins.is_new)"
        ") RETURNING m.id) "
        "SELECT id, dedupe_key, is_new, (SELECT count(*) FROM upd) FROM ins"
    )


def _insert_events_and_write(
    inbox_id: uuid.UUID,
    events: list[_NewEvent],
    received_at: datetime,
    updates: list[tuple[dict, machine.Merged, bool]],
    now: datetime,
    counted_keys: list[str],
) -> tuple[dict[str, int], int, bool]:
    """``_insert_events`` and ``_write_merged`` in one statement (PostgreSQL): one round trip
    instead of two for every webhook batch that changes a status.

    The messages are written only if every event the merge counted (``counted_keys``) was
    stored by this insert, as the merge assumed. If one was stored already (a dedupe-key clash
    outside the messages merged), nothing is written and the third value is False: the caller
    merges again from the database and writes then, as after ``_insert_events``."""
    unique, rows, within_batch = _event_rows(inbox_id, events, received_at)
    _, insert_params = _events_insert(inbox_id, rows, received_at)
    _, update_params = _merged_update(updates, now)
    sql = _insert_events_and_write_sql()
    with hot_cursor() as cursor:
        cursor.execute(sql, [*insert_params, *update_params, counted_keys])
        returned = cursor.fetchall()
    inserted = {key: event_id for event_id, key, is_new, _ in returned if is_new}
    written = bool(returned) and returned[0][3] > 0  # all of them: they are locked
    return inserted, within_batch + (len(unique) - len(inserted)), written
