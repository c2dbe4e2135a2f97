"""The shared write path: merge new events into their locked messages, store, publish."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import F
from django.utils import timezone

from inbox.rowsql import hot_cursor
from statuses import machine, publish
from statuses.events import StatusChange
from statuses.models import StatusEvent
from statuses.services.rows import (
    MERGED_FIELDS,
    ApplyResult,
    Outcome,
    _NewEvent,
)
from statuses.services.sql import _insert_events, _insert_events_and_write, _write_merged

# ---------------------------------------------------------------------------------------------
# The shared write path
# ---------------------------------------------------------------------------------------------


def _store_and_merge(
    inbox_id: uuid.UUID,
    events: list[_NewEvent],
    locked: dict[uuid.UUID, dict],
) -> ApplyResult:
    """Merge the new events into their (locked) messages, then store both in bulk.

    The merge runs before the insert, over the attempt's stored events plus the new ones, so
    each event is written once with its outcome (applied or recorded). Should an event the
    merge counted turn out to be stored already elsewhere (a dedupe-key clash outside this
    message), the merge is redone from the database.
    """
    result = ApplyResult()
    received_at = timezone.now()  # stored with the new events, and merged with them
    stored = _attempt_events(locked)
    merged_new: dict[str, _NewEvent] = {}
    for event in events:
        if (
            event.message_id in locked
            and event.outcome == Outcome.RECORDED
            and event.dedupe_key not in stored[event.message_id]
        ):
            merged_new.setdefault(event.dedupe_key, event)
    by_message: dict[uuid.UUID, list[machine.Event]] = defaultdict(list)
    for message_id, rows in stored.items():
        by_message[message_id].extend(rows.values())
    for event in merged_new.values():
        by_message[event.message_id].append(_as_machine_event(event, received_at))

    updates = _merge_locked(locked, by_message)
    changed_ids = {current["id"] for current, _, _ in updates}
    merged_by_id = {current["id"]: (current, merged) for current, merged, _ in updates}
    for event in merged_new.values():
        if event.message_id in changed_ids:
            current, merged = merged_by_id[event.message_id]
            if _contributed(_as_machine_event(event, received_at), current, merged):
                event.outcome = Outcome.APPLIED

    now = timezone.now()
    if updates and events and connection.vendor == "postgresql":
        # The events and the messages in one statement; the messages only as merged above.
        inserted_ids, result.duplicates, written = _insert_events_and_write(
            inbox_id, events, received_at, updates, now, list(merged_new)
        )
    else:
        inserted_ids, result.duplicates = _insert_events(inbox_id, events, received_at)
        written = False
    result.stored = len(inserted_ids)
    result.parked = sum(
        1 for e in events if e.outcome == Outcome.PARKED and e.dedupe_key in inserted_ids
    )
    result.stale = sum(
        1 for e in events if e.outcome == Outcome.STALE and e.dedupe_key in inserted_ids
    )
    if any(key not in inserted_ids for key in merged_new):
        # The merge counted an event stored already elsewhere: merge again from the database
        # (the one-statement form wrote no message in that case).
        written = False
        updates = _merge_from_database(locked, set(inserted_ids.values()))

    if updates:
        if not written:
            _write_merged(updates, now)
        for current, merged, status_changed in updates:
            result.changes.append(
                StatusChange(
                    message_id=current["id"],
                    account_id=current["account_id"],
                    conversation_id=current["conversation_id"],
                    channel_type=current["channel_type"],
                    previous_status=current["status"],
                    status=merged.status,
                    version=current["version"] + 1,
                    status_updated_at=now if status_changed else current["status_updated_at"],
                    error_code=merged.error_code,
                    error_title=merged.error_title,
                    error_detail=merged.error_detail,
                    campaign_id=current["campaign_id"],
                )
            )
        publish.status_changes(
            result.changes, notify_integrators=_any_webhooks(locked, changed_ids)
        )
    return result


def _as_machine_event(event: _NewEvent, received_at: datetime) -> machine.Event:
    return machine.Event(
        event.status,
        event.occurred_at,
        event.error_code,
        event.error_title,
        event.error_detail,
        received_at,
    )


def _attempt_events(locked: dict[uuid.UUID, dict]) -> dict[uuid.UUID, dict[str, machine.Event]]:
    """The stored events of each locked message's current attempt, by dedupe key."""
    stored: dict[uuid.UUID, dict[str, machine.Event]] = defaultdict(dict)
    if not locked:
        return stored
    if connection.vendor == "postgresql":
        with hot_cursor() as cursor:
            ids = list(locked)
            cursor.execute(_attempt_events_sql(), [ids, [locked[i]["attempt"] for i in ids]])
            rows = cursor.fetchall()
    else:
        rows = (
            StatusEvent.objects.filter(message_id__in=list(locked), attempt=F("message__attempt"))
            .exclude(outcome=Outcome.STALE)
            .values_list(*_ATTEMPT_EVENT_FIELDS)
            .order_by()
        )
    for message_id, key, status, occurred_at, code, title, detail, received in rows:
        stored[message_id][key] = machine.Event(status, occurred_at, code, title, detail, received)
    return stored


_ATTEMPT_EVENT_FIELDS = (
    "message_id",
    "dedupe_key",
    "status",
    "occurred_at",
    "error_code",
    "error_title",
    "error_detail",
    "received_at",
)


@cache
def _attempt_events_sql() -> str:
    """``_attempt_events``' ORM query, written once (it runs for every batch).

    Each locked row's (id, attempt) is looked up in the event table's index, one probe per
    message (``OFFSET 0`` keeps the planner from flattening the lateral subquery back into a
    join). Left to itself the planner scanned the whole event table: the ORM's shape
    (``message_id = ANY(…)`` joined to the messages) tested every stored event against every
    id. With 80,000 events in the benchmark a batch of 400 statuses spent 17-22 ms there to
    find nothing, 22 % of PostgreSQL's statement time for the batch; probed, 2 ms
    (``tests/statuses/test_attempt_events_read.py``, bench/README.md)."""
    quote = connection.ops.quote_name
    event = StatusEvent._meta

    def e(name: str) -> str:
        return "e." + quote(event.get_field(name).column)

    columns = ", ".join(e(name) for name in _ATTEMPT_EVENT_FIELDS)
    return (
        f"SELECT {columns} FROM unnest(%s::uuid[], %s::integer[]) AS l(id, attempt) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT {columns} FROM {quote(event.db_table)} e "
        f"WHERE {e('message_id')} = l.id AND {e('attempt')} = l.attempt "
        f"AND {e('outcome')} <> '{Outcome.STALE}' OFFSET 0) AS e"
    )


def _merge_locked(
    locked: dict[uuid.UUID, dict], by_message: dict[uuid.UUID, list[machine.Event]]
) -> list[tuple[dict, machine.Merged, bool]]:
    updates = []
    for message_id, current in locked.items():
        merged = machine.merge(by_message.get(message_id, []), created_at=current["created_at"])
        if any(current[name] != getattr(merged, name) for name in MERGED_FIELDS):
            updates.append((current, merged, current["status"] != merged.status))
    return updates


def _merge_from_database(
    locked: dict[uuid.UUID, dict], new_event_ids: set[int]
) -> list[tuple[dict, machine.Merged, bool]]:
    """The slow, always-right path: re-read the events as stored and re-mark the outcomes."""
    rows = (
        StatusEvent.objects.filter(message_id__in=list(locked), attempt=F("message__attempt"))
        .exclude(outcome=Outcome.STALE)
        .values_list(
            "id",
            "message_id",
            "status",
            "occurred_at",
            "error_code",
            "error_title",
            "error_detail",
            "received_at",
        )
        .order_by()
    )
    by_message: dict[uuid.UUID, list[tuple[int, machine.Event]]] = defaultdict(list)
    for event_id, message_id, status, occurred_at, code, title, detail, received in rows:
        by_message[message_id].append(
            (event_id, machine.Event(status, occurred_at, code, title, detail, received))
        )
    updates = _merge_locked(
        locked, {mid: [event for _, event in pairs] for mid, pairs in by_message.items()}
    )
    applied: list[int] = []
    for current, merged, _ in updates:
        for event_id, event in by_message.get(current["id"], []):
            if event_id in new_event_ids and _contributed(event, current, merged):
                applied.append(event_id)
    StatusEvent.objects.filter(id__in=new_event_ids).update(outcome=Outcome.RECORDED)
    StatusEvent.objects.filter(id__in=applied).update(outcome=Outcome.APPLIED)
    return updates


def _any_webhooks(locked: dict[uuid.UUID, dict], changed_ids: set[uuid.UUID]) -> bool:
    return any(locked[mid].get("has_webhooks", True) for mid in changed_ids)


def _contributed(event: machine.Event, before: dict, after: machine.Merged) -> bool:
    if event.status == machine.UNRECOGNIZED:
        return False
    if event.status == after.status and before["status"] != after.status:
        return True
    stamp = machine.TIMESTAMP_OF.get(event.status)
    if stamp is None:
        return False
    # The stamp is this event's time, raised to the previous stage's (machine.merge).
    moment = machine.not_before(
        machine.event_time(event), machine.stage_floor(stamp, after, before["created_at"])
    )
    return getattr(after, stamp) == moment and before[stamp] != moment
