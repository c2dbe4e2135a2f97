"""The only code that writes a message's status (DESIGN §3, §5).

Every write follows one path: lock the affected messages in a fixed order, store the new events
once each (dedupe key, ``ON CONFLICT``), re-merge the current attempt's full event set with the
pure merge rule, write back what changed, and broadcast after commit. The number of SQL
statements is constant per batch, whatever its size.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from inbox.models import Inbox, Message
from statuses import correlation, machine
from statuses.machine import Status
from statuses.models import SendTry, StatusEvent, WebhookSubscription
from statuses.providers.base import SendOutcome, SendResult, StatusUpdate, Watermark

log = logging.getLogger(__name__)

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
    *MERGED_FIELDS,
)


@dataclass
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


# ---------------------------------------------------------------------------------------------
# Public services
# ---------------------------------------------------------------------------------------------


def status_updates_apply(
    *,
    inbox: Inbox,
    updates: Sequence[StatusUpdate],
    source: str = Source.WEBHOOK,
    delivery_id: int | None = None,
    delivery_ids: Sequence[int | None] | None = None,
) -> ApplyResult:
    """Store and merge a batch of provider status updates for one inbox.

    ``delivery_ids`` names the recorded webhook delivery of each update (several deliveries
    applied together); otherwise every event is linked to ``delivery_id``.
    """
    if not updates:
        return ApplyResult()
    if delivery_ids is None:
        delivery_ids = [delivery_id] * len(updates)
    with transaction.atomic(savepoint=False):
        provider_ids = sorted({u.provider_message_id for u in updates if u.provider_message_id})
        by_provider_id = _messages_by_provider_id(inbox.id, provider_ids)
        unknown = sorted(set(provider_ids) - set(by_provider_id))
        if unknown:
            # Serialise with a concurrent send response recording one of these ids: either it
            # committed (seen now) or it will find what we park. Advisory locks always come
            # before row locks, on every path: no deadlocks.
            _advisory_lock(inbox.id, unknown)
            by_provider_id.update(_messages_by_provider_id(inbox.id, unknown))
        by_correlation = _messages_by_correlation(
            inbox.id, [u for u in updates if u.provider_message_id not in by_provider_id]
        )
        unresolved = {
            u.provider_message_id
            for u in updates
            if u.provider_message_id not in by_provider_id
            and _correlated(u, by_correlation) is None
        }
        old_attempts = _old_attempts_by_provider_id(inbox.id, sorted(unresolved - {""}))

        events: list[_NewEvent] = []
        adopt: dict[uuid.UUID, str] = {}  # lost send response: learn the provider id here
        for update, update_delivery_id in zip(updates, delivery_ids, strict=True):
            message_id, attempt, outcome = None, 1, Outcome.RECORDED
            if update.provider_message_id in by_provider_id:
                message_id, attempt = by_provider_id[update.provider_message_id]
            elif (hit := _correlated(update, by_correlation)) is not None:
                message_id, attempt, current_attempt, known_pid = hit
                if attempt != current_attempt:
                    outcome = Outcome.STALE
                elif update.provider_message_id and not known_pid:
                    adopt[message_id] = update.provider_message_id
            elif update.provider_message_id in old_attempts:
                message_id, attempt = old_attempts[update.provider_message_id]
                outcome = Outcome.STALE
            else:
                outcome = Outcome.PARKED
            event = _event_from_update(update, message_id, attempt, source, outcome)
            event.delivery_id = update_delivery_id
            events.append(event)

        locked = _lock_messages(
            {e.message_id for e in events if e.message_id and e.outcome != Outcome.STALE}
        )
        for event in events:
            current = locked.get(event.message_id)
            if current is not None and event.outcome == Outcome.RECORDED:
                # A resend between the look-up and the lock makes this an older attempt's news.
                moved_on = current["attempt"] != event.attempt or (
                    event.provider_message_id in by_provider_id
                    and current["provider_message_id"] != event.provider_message_id
                )
                if moved_on:
                    event.outcome = Outcome.STALE
        if adopt:
            _adopt_provider_ids(locked, adopt)
        return _store_and_merge(inbox.id, events, locked)


def watermarks_apply(
    *,
    inbox: Inbox,
    watermarks: Sequence[Watermark],
    source: str = Source.WEBHOOK,
    delivery_id: int | None = None,
    delivery_ids: Sequence[int | None] | None = None,
) -> ApplyResult:
    """Mark every earlier outgoing message of each contact's conversation delivered/read.

    One statement selects and locks the covered messages of all watermarks at once; there is
    never a query per message (Chatwoot's watermark bug, DESIGN §11).
    """
    if not watermarks:
        return ApplyResult()
    with transaction.atomic(savepoint=False):
        marks = list(watermarks)
        if delivery_ids is None:
            delivery_ids = [delivery_id] * len(marks)
        bound_ids = sorted({w.up_to_provider_message_id for w in marks} - {""})
        bounds = _watermark_bounds(inbox.id, bound_ids)

        candidates = _watermark_candidates(inbox.id, marks, bounds)
        locked = _lock_messages({row["id"] for row in candidates})
        events: list[_NewEvent] = []
        for mark, mark_delivery_id in zip(marks, delivery_ids, strict=True):
            up_to = _watermark_bound(mark, bounds)
            if up_to is None:
                continue
            eligible = _WATERMARK_ELIGIBLE[mark.status]
            for row in candidates:
                current = locked.get(row["id"])
                if (
                    current is None
                    or row["to_address"] != mark.contact_address
                    or current["status"] not in eligible
                    or row["provider_time"] > up_to
                ):
                    continue
                events.append(
                    _NewEvent(
                        message_id=row["id"],
                        attempt=current["attempt"],
                        provider_message_id=current["provider_message_id"] or "",
                        correlation_id="",
                        status=mark.status,
                        raw_status=mark.raw_status,
                        occurred_at=mark.occurred_at,
                        source=source,
                        outcome=Outcome.RECORDED,
                        error_code="",
                        error_title="",
                        error_detail="",
                        dedupe_key=f"{mark.dedupe_key}|{row['id']}",
                        delivery_id=mark_delivery_id,
                    )
                )
        return _store_and_merge(inbox.id, events, locked)


def messages_prelock(
    *, inbox: Inbox, updates: Sequence[StatusUpdate], watermarks: Sequence[Watermark]
) -> None:
    """Lock, in one ordered statement, every message a webhook carrying both statuses and
    watermarks will touch (Messenger: a delivery's ``mids`` and its watermark).

    Applying them one after the other would lock rows in two phases, and two such webhooks
    could each hold a row the other waits for. Later locks of the same rows in this
    transaction return at once.
    """
    provider_ids = sorted({u.provider_message_id for u in updates if u.provider_message_id})
    _advisory_lock(inbox.id, provider_ids)
    ids = {mid for mid, _ in _messages_by_provider_id(inbox.id, provider_ids).values()}
    bound_ids = sorted({w.up_to_provider_message_id for w in watermarks} - {""})
    bounds = _watermark_bounds(inbox.id, bound_ids)
    ids |= {row["id"] for row in _watermark_candidates(inbox.id, list(watermarks), bounds)}
    _lock_messages(ids)


def message_status_report(
    *,
    message: Message,
    status: str,
    source: str,
    occurred_at: datetime | None = None,
    raw_status: str = "",
    error_code: str = "",
    error_title: str = "",
    error_detail: str = "",
    dedupe_key: str | None = None,
) -> ApplyResult:
    """Apply one status statement about a known message (API report, widget, sweep, agent)."""
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic(savepoint=False):
        locked = _lock_messages({message.id})
        current = locked.get(message.id)
        if current is None:
            return ApplyResult()
        attempt = current["attempt"]
        key = dedupe_key or f"{source}:{message.id}:{attempt}:{status}:{error_code}"
        event = _NewEvent(
            message_id=message.id,
            attempt=attempt,
            provider_message_id=current["provider_message_id"] or "",
            correlation_id="",
            status=status,
            raw_status=raw_status or status,
            occurred_at=occurred_at,
            source=source,
            outcome=Outcome.RECORDED,
            error_code=error_code,
            error_title=error_title,
            error_detail=error_detail,
            dedupe_key=key,
        )
        return _store_and_merge(current["inbox_id"], [event], locked)


def message_record_send_result(
    *, message_id: uuid.UUID, attempt: int, result: SendResult, occurred_at: datetime | None = None
) -> ApplyResult:
    """Record what the provider answered to a send, and apply statuses parked for its id."""
    occurred_at = occurred_at or timezone.now()
    provider_id = result.provider_message_id if result.outcome == SendOutcome.ACCEPTED else ""
    status = {
        SendOutcome.ACCEPTED: result.status or Status.SENT,
        SendOutcome.REJECTED: Status.FAILED,
        SendOutcome.UNKNOWN: Status.UNKNOWN,
    }.get(result.outcome)
    if status is None:
        raise ValueError("a transient send outcome is retried, not recorded")
    with transaction.atomic(savepoint=False):
        inbox_id = (
            Message.objects.filter(id=message_id, direction=Message.Direction.OUTGOING)
            .values_list("inbox_id", flat=True)
            .first()
        )
        if inbox_id is None:
            return ApplyResult()
        _advisory_lock(inbox_id, [provider_id] if provider_id else [])
        locked = _lock_messages({message_id})
        current = locked[message_id]
        stale = current["attempt"] != attempt
        if provider_id and not stale:
            _adopt_provider_ids(locked, {message_id: provider_id}, replace=True)
        event = _NewEvent(
            message_id=message_id,
            attempt=attempt,
            provider_message_id=provider_id,
            correlation_id=correlation.make(message_id, attempt),
            status=status,
            raw_status=f"send:{result.outcome}",
            occurred_at=occurred_at,
            source=Source.SEND,
            outcome=Outcome.STALE if stale else Outcome.RECORDED,
            error_code=result.error_code,
            error_title=result.error_title,
            error_detail=result.error_detail,
            dedupe_key=f"send:{message_id}:{attempt}",
        )
        if provider_id and not stale:
            # Statuses that raced ahead of this send response now find their message.
            StatusEvent.objects.filter(
                inbox_id=inbox_id, message__isnull=True, provider_message_id=provider_id
            ).update(message_id=message_id, attempt=attempt, outcome=Outcome.RECORDED)
        return _store_and_merge(inbox_id, [event], locked)


def message_start_attempt(*, message: Message) -> Message:
    """Reset a failed/expired message for a new attempt (DESIGN §3.3); the caller enqueues it.

    Older attempts' events stay in the log but no longer count; the provider id is cleared.
    """
    now = timezone.now()
    previous_status = message.status
    updated = Message.objects.filter(id=message.id, status__in=machine.RESENDABLE).update(
        attempt=F("attempt") + 1,
        status=Status.QUEUED,
        provider_message_id=None,
        error_code="",
        error_title="",
        error_detail="",
        sent_at=None,
        delivered_at=None,
        read_at=None,
        failed_at=None,
        queued_at=now,
        status_updated_at=now,
        updated_at=now,
        version=F("version") + 1,
    )
    message.refresh_from_db()
    if updated:
        change = StatusChange(
            message_id=message.id,
            account_id=message.account_id,
            conversation_id=message.conversation_id,
            channel_type=message.channel_type,
            previous_status=previous_status,
            status=message.status,
            version=message.version,
            status_updated_at=message.status_updated_at,
            error_code="",
            error_title="",
            error_detail="",
        )
        _publish([change])
    return message


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

    inserted_ids, result.duplicates = _insert_events(inbox_id, events, received_at)
    result.stored = len(inserted_ids)
    result.parked = sum(
        1 for e in events if e.outcome == Outcome.PARKED and e.dedupe_key in inserted_ids
    )
    result.stale = sum(
        1 for e in events if e.outcome == Outcome.STALE and e.dedupe_key in inserted_ids
    )
    if any(key not in inserted_ids for key in merged_new):
        updates = _merge_from_database(locked, set(inserted_ids.values()))

    if updates:
        now = timezone.now()
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
                )
            )
        _publish(result.changes, notify_integrators=_any_webhooks(locked, changed_ids))
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
    rows = (
        StatusEvent.objects.filter(message_id__in=list(locked), attempt=F("message__attempt"))
        .exclude(outcome=Outcome.STALE)
        .values_list(
            "message_id",
            "dedupe_key",
            "status",
            "occurred_at",
            "error_code",
            "error_title",
            "error_detail",
            "received_at",
        )
        .order_by()
    )
    for message_id, key, status, occurred_at, code, title, detail, received in rows:
        stored[message_id][key] = machine.Event(status, occurred_at, code, title, detail, received)
    return stored


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
    stamp = _TIMESTAMP_OF.get(event.status)
    if stamp is None:
        return False
    # The stamp is this event's time, raised to the previous stage's (machine.merge).
    moment = machine.not_before(
        machine.event_time(event), machine.stage_floor(stamp, after, before["created_at"])
    )
    return getattr(after, stamp) == moment and before[stamp] != moment


_TIMESTAMP_OF = {
    Status.SENT: "sent_at",
    Status.RECEIVED: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
    Status.EXPIRED: "failed_at",
}

_WATERMARK_ELIGIBLE = {
    Status.DELIVERED: frozenset({Status.UNKNOWN, Status.SENT, Status.RECEIVED}),
    Status.READ: frozenset({Status.UNKNOWN, Status.SENT, Status.RECEIVED, Status.DELIVERED}),
}


def _publish(changes: list[StatusChange], notify_integrators: bool = True) -> None:
    """Hand the changes to everything that reacts to them, once the transaction commits.

    ``notify_integrators`` is False when the lock query already showed that no account
    concerned has an active webhook subscription (saves a query on the hot path).
    """
    if not changes:
        return
    from channels_app import broadcast
    from statuses import outgoing

    if notify_integrators:
        outgoing.status_changes_record(changes)
    transaction.on_commit(lambda: broadcast.status_changes(changes))


# ---------------------------------------------------------------------------------------------
# SQL helpers (each one statement)
# ---------------------------------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _advisory_lock(inbox_id: uuid.UUID, provider_ids: Iterable[str]) -> None:
    """Serialise writers on the same provider ids, so a status that arrives while its send
    response is being recorded is either seen by the send or sees the send — never parked
    forever. Keys are taken in sorted order: no deadlocks. (SQLite has one writer anyway.)"""
    keys = sorted({_lock_key(inbox_id, pid) for pid in provider_ids})
    if not keys or not _is_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
            [keys],
        )


def _lock_key(inbox_id: uuid.UUID, provider_id: str) -> int:
    digest = hashlib.blake2b(f"{inbox_id}:{provider_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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


def _messages_by_correlation(
    inbox_id: uuid.UUID, updates: list[StatusUpdate]
) -> dict[uuid.UUID, tuple[int, str | None]]:
    ids = {parsed[0] for u in updates if (parsed := correlation.parse(u.correlation_id))}
    if not ids:
        return {}
    rows = (
        Message.objects.filter(inbox_id=inbox_id, direction=_OUTGOING, id__in=ids)
        .values_list("id", "attempt", "provider_message_id")
        .order_by()
    )
    return {mid: (attempt, pid) for mid, attempt, pid in rows}


def _correlated(
    update: StatusUpdate, by_correlation: dict[uuid.UUID, tuple[int, str | None]]
) -> tuple[uuid.UUID, int, int, str | None] | None:
    parsed = correlation.parse(update.correlation_id)
    if parsed is None or parsed[0] not in by_correlation:
        return None
    current_attempt, known_pid = by_correlation[parsed[0]]
    return parsed[0], parsed[1], current_attempt, known_pid


def _old_attempts_by_provider_id(
    inbox_id: uuid.UUID, provider_ids: list[str]
) -> dict[str, tuple[uuid.UUID, int]]:
    if not provider_ids:
        return {}
    rows = (
        StatusEvent.objects.filter(
            inbox_id=inbox_id,
            provider_message_id__in=provider_ids,
            message__direction=_OUTGOING,
        )
        .values_list("provider_message_id", "message_id", "attempt")
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


def _provider_time() -> Coalesce:
    """A message's time as the provider stamps it, bounded from below: when the accepted
    request went out (our ``sent_at`` is later, when the answer came back; Meta's watermark is
    its own timestamp of the message read, which lies in between)."""
    handed_over = Subquery(
        SendTry.objects.filter(
            message_id=OuterRef("id"),
            attempt=OuterRef("attempt"),
            outcome=SendTry.Outcome.ACCEPTED,
        )
        .order_by("-number")
        .values("started_at")[:1]
    )
    return Coalesce(handed_over, "sent_at", "created_at")


def _watermark_bounds(inbox_id: uuid.UUID, provider_ids: list[str]) -> dict[str, datetime]:
    if not provider_ids:
        return {}
    return dict(
        Message.objects.filter(
            inbox_id=inbox_id, direction=_OUTGOING, provider_message_id__in=provider_ids
        )
        .annotate(provider_time=_provider_time())
        .values_list("provider_message_id", "provider_time")
        .order_by()
    )


def _watermark_candidates(
    inbox_id: uuid.UUID, marks: list[Watermark], bounds: dict[str, datetime]
) -> list[dict]:
    addresses = sorted({m.contact_address for m in marks})
    latest = max((b for m in marks if (b := _watermark_bound(m, bounds)) is not None), default=None)
    if latest is None:
        return []
    eligible = sorted(set().union(*(_WATERMARK_ELIGIBLE[m.status] for m in marks)))
    return list(
        Message.objects.filter(
            inbox_id=inbox_id,
            direction=Message.Direction.OUTGOING,
            to_address__in=addresses,
            status__in=eligible,
            created_at__lte=latest,
        )
        .annotate(provider_time=_provider_time())
        .values("id", "to_address", "provider_time")
        .order_by()
    )


def _watermark_bound(mark: Watermark, bounds: dict[str, datetime]) -> datetime | None:
    candidates = [mark.up_to] if mark.up_to else []
    if mark.up_to_provider_message_id in bounds:
        candidates.append(bounds[mark.up_to_provider_message_id])
    return max(candidates) if candidates else None


def _event_from_update(
    update: StatusUpdate, message_id: uuid.UUID | None, attempt: int, source: str, outcome: str
) -> _NewEvent:
    return _NewEvent(
        message_id=message_id,
        attempt=attempt,
        provider_message_id=update.provider_message_id,
        correlation_id=update.correlation_id[:100],
        status=update.status,
        raw_status=update.raw_status[:100],
        occurred_at=update.occurred_at,
        source=source,
        outcome=outcome,
        error_code=str(update.error_code)[:100],
        error_title=update.error_title[:500],
        error_detail=update.error_detail,
        dedupe_key=update.dedupe_key[:400],
    )


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
        # One array per column: the statement text is the same whatever the batch size, so
        # neither the driver nor the server re-parses thousands of placeholders.
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in _EVENT_COLUMNS)
        sql = (
            f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) AS u({names}) "
            f"ORDER BY u.dedupe_key {on_conflict} RETURNING id, dedupe_key, (xmax = 0)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])
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
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, *columns])
