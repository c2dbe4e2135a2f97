"""Outgoing integrator webhooks: subscriptions and the events to deliver (DESIGN §8).

Recording happens inside the status transaction, so an event exists iff the change committed,
and its payload is the full message as the REST API shows it *at that moment*. A batch of
changes costs a constant number of queries (subscriptions, messages, one bulk insert, one
task). Delivery, signing and retries are in ``statuses.webhooks_out``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from inbox import rowsql
from inbox.exceptions import InboxError
from inbox.models import Account, Message
from inbox.representation import message_representation
from statuses import tasks
from statuses.events import StatusChange
from statuses.models import OutgoingEvent, WebhookSubscription

STATUS_CHANGED = WebhookSubscription.EventType.MESSAGE_STATUS_CHANGED
CREATED = WebhookSubscription.EventType.MESSAGE_CREATED


class TooManySubscriptions(InboxError):
    code = "too_many_webhooks"
    http_status = 400

    def __init__(self, limit: int):
        super().__init__(
            f"An account can have at most {limit} webhook subscriptions; delete one first."
        )


def subscription_create(*, account: Account, url: str, events: list[str]) -> WebhookSubscription:
    limit = settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_ACCOUNT
    with transaction.atomic():
        # Lock the account so two concurrent creates cannot both pass the count.
        Account.objects.select_for_update().filter(id=account.id).exists()
        if WebhookSubscription.objects.filter(account=account).count() >= limit:
            raise TooManySubscriptions(limit)
        return WebhookSubscription.objects.create(account=account, url=url, events=events)


def subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Delete a subscription and its events, safely at any moment.

    Status transactions and webhook deliveries hold a ``FOR KEY SHARE`` lock on the subscriptions
    they write events or attempts for (``pinned``), so locking the row ``FOR UPDATE`` first waits
    for those in flight, and the cascade then sees every row they wrote; the ones that start
    later find the subscription gone and write nothing. No one ever hits a foreign-key error.
    """
    with transaction.atomic():
        locked = WebhookSubscription.objects.select_for_update().filter(id=subscription.id)
        if locked.exists():
            subscription.delete()


def pinned(queryset: QuerySet[WebhookSubscription]) -> list[WebhookSubscription]:
    """Read subscriptions and keep them from being deleted until the transaction ends.

    ``FOR KEY SHARE`` does not block other readers, status transactions or updates of a
    subscription's fields, only its deletion (see ``subscription_delete``). SQLite has a single
    writer, so a plain read is enough there.
    """
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    return list(queryset.model.objects.raw(f"{sql} FOR KEY SHARE", params))


def event_body(
    *, event_type: str, created_at: datetime, message: dict[str, Any], **data: Any
) -> dict[str, Any]:
    """The JSON body integrators receive: ``{id, type, created_at, data: {message, …}}``."""
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "created_at": created_at.isoformat(),
        "data": {"message": message, **data},
    }


def _subscriptions(account_ids: set[int], event_type: str) -> list[WebhookSubscription]:
    # Pinned: a subscription deleted meanwhile would make the event insert (and with it the
    # whole status transaction) fail on its foreign key.
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        subs = _active_pinned(account_ids)
    else:
        subs = pinned(
            WebhookSubscription.objects.filter(account_id__in=account_ids, is_active=True)
        )
    # Filtered in Python: JSON "contains" is not portable to SQLite, and lists are tiny.
    return [s for s in subs if event_type in (s.events or [])]


@cache
def _active_pinned_sql() -> str:
    columns = ", ".join(rowsql.columns(WebhookSubscription))
    table = WebhookSubscription._meta.db_table
    # Identifiers from the model only; the account ids are a bound parameter.
    sql = f"SELECT {columns} FROM {table} WHERE account_id = ANY(%s) AND is_active"  # noqa: S608
    return f"{sql} FOR KEY SHARE"


def _active_pinned(account_ids: set[int]) -> list[WebhookSubscription]:
    """``pinned`` active subscriptions of these accounts, from a statement built once: every new
    message and every status change asks this, and the ORM's query building cost more than the
    indexed read itself (bench/README.md)."""
    with connection.cursor() as cursor:
        cursor.execute(_active_pinned_sql(), [list(account_ids)])
        rows = cursor.fetchall()
    return [rowsql.from_row(WebhookSubscription, row) for row in rows]


def _represent(messages: list[Message]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in map(message_representation, messages)}


def _events(
    subscriptions: list[WebhookSubscription],
    *,
    event_type: str,
    account_id: int,
    message_id: uuid.UUID,
    message: dict[str, Any],
    now: datetime,
    **data: Any,
) -> list[OutgoingEvent]:
    """One event body, one row per subscription of the message's account (not yet saved)."""
    body = event_body(event_type=event_type, created_at=now, message=message, **data)
    return [
        OutgoingEvent(
            subscription=sub,
            event_type=event_type,
            message_id=message_id,
            payload=body,
            created_at=now,
            next_attempt_at=now,
        )
        for sub in subscriptions
        if sub.account_id == account_id
    ]


def _save(events: list[OutgoingEvent]) -> None:
    if events:
        OutgoingEvent.objects.bulk_create(events)
        tasks.webhook_delivery_enqueue()


def status_changes_record(changes: list[StatusChange]) -> None:
    """Queue a ``message.status_changed`` event per change for every subscribed endpoint."""
    subscriptions = _subscriptions({c.account_id for c in changes}, STATUS_CHANGED)
    if not subscriptions:
        return
    wanted = {c.account_id for c in changes} & {s.account_id for s in subscriptions}
    relevant = [c for c in changes if c.account_id in wanted]
    # Read inside the status transaction, after the merged write: the state just committed.
    messages = _represent(list(Message.objects.filter(id__in=[c.message_id for c in relevant])))
    now = timezone.now()
    events = []
    for change in relevant:
        message = messages.get(str(change.message_id))
        if message is None:
            continue
        events += _events(
            subscriptions,
            event_type=STATUS_CHANGED,
            account_id=change.account_id,
            message_id=change.message_id,
            message=message,
            now=now,
            previous_status=change.previous_status.upper() or None,
        )
    _save(events)


def message_created_record(message: Message) -> None:
    """Queue a ``message.created`` event for every subscribed endpoint of the account."""
    subscriptions = _subscriptions({message.account_id}, CREATED)
    if not subscriptions:
        return
    _save(
        _events(
            subscriptions,
            event_type=CREATED,
            account_id=message.account_id,
            message_id=message.id,
            message=_represent([message])[str(message.id)],
            now=timezone.now(),
        )
    )
