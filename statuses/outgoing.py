"""Outgoing integrator webhooks: record events to deliver (DESIGN §8).

Recording happens inside the status transaction (so an event exists iff the change
committed); delivery, signing and retries happen in the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils import timezone

from statuses.models import OutgoingEvent, WebhookSubscription

if TYPE_CHECKING:
    from inbox.models import Message
    from statuses.services import StatusChange

STATUS_CHANGED = WebhookSubscription.EventType.MESSAGE_STATUS_CHANGED
CREATED = WebhookSubscription.EventType.MESSAGE_CREATED


def _subscriptions(account_ids: set[int], event_type: str) -> list[WebhookSubscription]:
    subs = WebhookSubscription.objects.filter(account_id__in=account_ids, is_active=True)
    return [s for s in subs if event_type in (s.events or [])]


def status_changes_record(changes: list[StatusChange]) -> None:
    """Queue a ``message.status_changed`` event per change for every subscribed endpoint."""
    subscriptions = _subscriptions({c.account_id for c in changes}, STATUS_CHANGED)
    if not subscriptions:
        return
    now = timezone.now()
    events = [
        OutgoingEvent(
            subscription=sub,
            event_type=STATUS_CHANGED,
            message_id=change.message_id,
            payload={
                "message_id": str(change.message_id),
                "status": change.status,
                "previous_status": change.previous_status,
                "version": change.version,
                "status_updated_at": change.status_updated_at.isoformat(),
            },
            created_at=now,
            next_attempt_at=now,
        )
        for change in changes
        for sub in subscriptions
        if sub.account_id == change.account_id
    ]
    OutgoingEvent.objects.bulk_create(events)
    _enqueue_delivery()


def message_created_record(message: Message) -> None:
    subscriptions = _subscriptions({message.account_id}, CREATED)
    if not subscriptions:
        return
    now = timezone.now()
    OutgoingEvent.objects.bulk_create(
        OutgoingEvent(
            subscription=sub,
            event_type=CREATED,
            message_id=message.id,
            payload={"message_id": str(message.id), "status": message.status},
            created_at=now,
            next_attempt_at=now,
        )
        for sub in subscriptions
    )
    _enqueue_delivery()


def _enqueue_delivery() -> None:
    from statuses import tasks

    tasks.deliver_outgoing_webhooks.enqueue()
