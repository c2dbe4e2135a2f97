"""Single statements about a known message: reports, send results, a new attempt."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inbox.models import Message
from statuses import correlation, machine, publish
from statuses.events import StatusChange
from statuses.machine import Status
from statuses.models import StatusEvent
from statuses.providers.base import SendOutcome, SendResult
from statuses.services.merge import _store_and_merge
from statuses.services.rows import (
    ApplyResult,
    Outcome,
    Source,
    _adopt_provider_ids,
    _lock_messages,
    _NewEvent,
)
from statuses.services.sql import _advisory_lock


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
    *,
    message_id: uuid.UUID,
    attempt: int,
    result: SendResult,
    occurred_at: datetime | None = None,
    inbox_id: uuid.UUID | None = None,
) -> ApplyResult:
    """Record what the provider answered to a send, and apply statuses parked for its id.

    ``inbox_id``: the outgoing message's inbox when the caller holds it (the sender, which
    claimed the message), saving the statement that looks it up.
    """
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
        if inbox_id is None:
            inbox_id = (
                Message.objects.filter(id=message_id, direction=Message.Direction.OUTGOING)
                .values_list("inbox_id", flat=True)
                .first()
            )
        if inbox_id is None:
            return ApplyResult()
        _advisory_lock(inbox_id, [provider_id] if provider_id else [])
        locked = _lock_messages({message_id})
        current = locked.get(message_id)
        if current is None:  # deleted meanwhile
            return ApplyResult()
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
            campaign_id=message.campaign_id,
        )
        publish.status_changes([change])
    return message
