"""Provider status updates: match each to its message and attempt, then merge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import transaction

from inbox.models import Inbox, Message
from statuses import correlation
from statuses.models import StatusEvent
from statuses.providers.base import StatusUpdate, Watermark
from statuses.services.merge import _store_and_merge
from statuses.services.rows import (
    _OUTGOING,
    ApplyResult,
    Outcome,
    Source,
    _adopt_provider_ids,
    _lock_messages,
    _messages_by_provider_id,
    _NewEvent,
)
from statuses.services.sql import _advisory_lock
from statuses.services.watermarks import _watermark_bounds, _watermark_candidates


def status_updates_apply(
    *,
    inbox: Inbox,
    updates: Sequence[StatusUpdate],
    source: str = Source.WEBHOOK,
    delivery_id: int | None = None,
    delivery_ids: Sequence[int | None] | None = None,
    found: dict[str, tuple[uuid.UUID, int]] | None = None,
) -> ApplyResult:
    """Store and merge a batch of provider status updates for one inbox.

    ``delivery_ids`` names the recorded webhook delivery of each update (several deliveries
    applied together); otherwise every event is linked to ``delivery_id``. ``found``: the
    outgoing messages of this inbox with the updates' provider ids, looked up already in this
    transaction (``deliveries_store_and_find``).
    """
    if not updates:
        return ApplyResult()
    if delivery_ids is None:
        delivery_ids = [delivery_id] * len(updates)
    with transaction.atomic(savepoint=False):
        provider_ids = sorted({u.provider_message_id for u in updates if u.provider_message_id})
        if found is None:
            by_provider_id = _messages_by_provider_id(inbox.id, provider_ids)
        else:
            by_provider_id = {pid: found[pid] for pid in provider_ids if pid in found}
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
