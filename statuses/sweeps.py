"""Periodic sweeps (DESIGN §3, §5, §6), run by every ``manage.py worker`` and callable from tests.

Each sweep is set-based — a constant number of statements per batch, never one query per
message (the Twilio reconciliation needs one HTTP call per message, nothing more) — and safe to
run in several workers at once: on PostgreSQL a transaction-level advisory lock lets one worker
run a given sweep while the others skip it, and every status a sweep writes has a dedupe key.

1. ``send_tries_recover``: a send try still in flight long after any HTTP timeout belongs to a
   worker that died mid-request. The provider may or may not have the message, so it becomes
   ``unknown`` (never a blind resend) — except on channels where a repeat is harmless (LINE's
   retry key, our own widget), which are simply sent again.
2. ``queued_requeue``: a queued message whose send task vanished (a worker killed after claiming
   the task, a task that crashed) is enqueued again — a campaign's at the campaign priority, as
   bulk — unless its campaign is not running (a paused campaign's messages wait queued on
   purpose). Tasks claimed by a dead worker are closed as failed first.
3. ``unknown_reconcile``: ask the provider about ``unknown`` messages where its spec has a
   ``reconcile`` lookup. Only Twilio offers one (``GET …/Messages/<sid>.json``), and only when
   we know the sid — after a lost send response we do not, but Twilio's status callback carries our
   correlation id (``?tm=`` on the StatusCallback URL), so the first callback fixes the message.
   Meta's and Bandwidth's callbacks echo the correlation id too. Messages nobody ever reports
   on end as ``expired`` (sweep 4).
4. ``messages_expire``: messages still below ``delivered`` past their channel's time-to-live
   become ``expired`` — only on channels that report delivery (elsewhere silence is normal).
5. ``parked_expire``: status events parked for a provider id we never learned become
   ``unmatched`` once the provider has stopped retrying (browsable in the admin).
6. ``widget_contacts_expire``: anyone may start a web-widget chat, so contacts that never wrote
   (and were never written to) are deleted with their empty conversations after
   ``TICKMARK_WIDGET_IDLE_CONTACT_HOURS``.
7. ``deliveries_prune``: recorded provider webhook calls are deleted after
   ``TICKMARK_KEEP_ACCEPTED_DAYS`` (rejected ones after ``TICKMARK_KEEP_REJECTED_DAYS``), in
   batches of ``PRUNE_BATCH`` ids, each its own short transaction.
8. ``statuses.templates.templates_sync_due``: each WhatsApp inbox's templates are synced from
   the provider every ``TICKMARK_TEMPLATE_SYNC_INTERVAL`` seconds, so a missed template
   webhook never leaves a stale status.
9. ``campaigns_sweep`` (``statuses.campaigns.lifecycle``): completes campaigns with nothing left
   to send, enqueues again a materialising whose worker died, fails what a retry left queued
   after a cancel, and folds the campaigns' count rows.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from inbox.models import Campaign, Contact, Conversation, Inbox, Message
from statuses import correlation, providers, services, tasks, templates
from statuses.campaigns import lifecycle as campaigns
from statuses.catalogue import CHANNELS, ChannelType
from statuses.machine import BELOW_DELIVERED, Status
from statuses.models import SendTry, StatusEvent, WebhookDelivery
from statuses.providers.base import StatusUpdate
from statuses.sending import IDEMPOTENT_CHANNELS, http_client
from statuses.services.sql import advisory_key

log = logging.getLogger(__name__)

BATCH = 500
WORKER_LOST = "statuses.sweeps.WorkerLost"
# Give a status callback this long to explain an unknown message before asking the provider.
RECONCILE_AFTER = timedelta(seconds=60)


def run_all(now: datetime | None = None) -> dict[str, int]:
    """Run every sweep once; return how many rows each one changed."""
    results = {}
    for sweep in (
        send_tries_recover,
        queued_requeue,
        unknown_reconcile,
        messages_expire,
        parked_expire,
        widget_contacts_expire,
        deliveries_prune,
        templates.templates_sync_due,
        campaigns.campaigns_sweep,
    ):
        try:
            results[sweep.__name__] = sweep(now=now)
        except (OperationalError, InterfaceError):
            raise  # the database is down: the worker's sweep lane waits and tries again
        except Exception:
            # One failing sweep must not stop the others (nor the worker).
            log.exception("sweep %s failed", sweep.__name__)
            results[sweep.__name__] = -1
    return results


@contextmanager
def _exclusive(name: str) -> Iterator[bool]:
    """Run the block in a transaction that only one worker at a time gets for ``name``."""
    with transaction.atomic():
        if connection.vendor != "postgresql":
            yield True  # SQLite: one writer anyway, and one embedded worker
            return
        key = advisory_key(f"sweep:{name}")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
            yield bool(cursor.fetchone()[0])


# ---------------------------------------------------------------------------------------------
# 1. Send tries lost with their worker


def send_tries_recover(now: datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SEND_IN_FLIGHT_STALE_AFTER)
    with _exclusive("send_tries_recover") as mine:
        if not mine:
            return 0
        lost = list(
            SendTry.objects.filter(outcome=SendTry.Outcome.IN_FLIGHT, started_at__lt=cutoff)
            .select_for_update(skip_locked=True, of=("self",))
            .values("id", "message_id", "attempt", "message__channel_type", "message__inbox_id")[
                :BATCH
            ]
        )
        if not lost:
            return 0
        SendTry.objects.filter(id__in=[row["id"] for row in lost]).update(
            outcome=SendTry.Outcome.LOST,
            finished_at=now,
            error_code="worker_lost",
            error_detail="The worker stopped while the request was in flight.",
        )
        by_inbox: dict[uuid.UUID, list[StatusUpdate]] = defaultdict(list)
        for row in lost:
            if row["message__channel_type"] in IDEMPOTENT_CHANNELS:
                continue  # still queued: sweep 2 sends it again, harmlessly
            by_inbox[row["message__inbox_id"]].append(
                _sweep_update(
                    row["message_id"],
                    row["attempt"],
                    Status.UNKNOWN,
                    now,
                    kind="lost",
                    code="worker_lost",
                    title="Outcome unknown",
                    detail="The worker stopped while handing the message to the provider; "
                    "it may or may not have been sent.",
                )
            )
        _apply(by_inbox)
    log.warning("recovered %d send tries lost with their worker", len(lost))
    return len(lost)


# ---------------------------------------------------------------------------------------------
# 2. Queued messages without a send task


def queued_requeue(now: datetime | None = None) -> int:
    now = now or timezone.now()
    task = tasks.send_message
    with _exclusive("queued_requeue") as mine:
        if not mine:
            return 0
        # A task claimed by a worker that died stays RUNNING forever: close it.
        dead = now - timedelta(seconds=settings.SEND_IN_FLIGHT_STALE_AFTER)
        DBTaskResult.objects.filter(
            task_path=task.module_path, status=TaskResultStatus.RUNNING, started_at__lt=dead
        ).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path=WORKER_LOST,
            traceback="The worker stopped while running this task (found by a sweep).",
        )
        # A campaign that is not running keeps its messages queued on purpose (a pause, a
        # schedule; a cancel fails them): its resume enqueues them (``campaigns.lifecycle``).
        rows = list(
            Message.objects.filter(
                Q(campaign__isnull=True) | Q(campaign__status__in=Campaign.SENDING_STATES),
                ~Exists(
                    SendTry.objects.filter(
                        message_id=OuterRef("pk"), outcome=SendTry.Outcome.IN_FLIGHT
                    )
                ),
                _no_send_task(),
                direction=Message.Direction.OUTGOING,
                status=Status.QUEUED,
                queued_at__lt=now - timedelta(seconds=settings.SEND_REQUEUE_AFTER),
            )
            .values_list("id", "attempt", "campaign_id")
            .order_by("queued_at")[:BATCH]
        )
        # Campaign sends go again behind every interactive send, as bulk (``tasks``).
        bulk = [(str(mid), attempt) for mid, attempt, campaign in rows if campaign]
        interactive = [(str(mid), attempt) for mid, attempt, campaign in rows if not campaign]
        tasks.send_enqueue_many(interactive)
        tasks.send_enqueue_many(bulk, priority=tasks.CAMPAIGN_PRIORITY)
    if rows:
        log.warning("re-enqueued %d queued messages whose send task vanished", len(rows))
    return len(rows)


def _no_send_task() -> RawSQL:
    """``NOT EXISTS`` a waiting or running send task for the message's current attempt.

    Matched in the database, so a sweep costs the same with 100,000 campaign sends waiting as
    with none. On PostgreSQL the task row is found through its partial expression index on the
    message id (migration ``statuses.0010``). SQLite (the embedded mode) stores a UUID as 32
    hex digits, the task's argument with dashes.
    """
    table, m = DBTaskResult._meta.db_table, Message._meta.db_table  # m: the outer query's
    if connection.vendor == "postgresql":
        match = (
            f"t.args_kwargs -> 'args' ->> 0 = {m}.id::text "
            f"AND t.args_kwargs -> 'args' = jsonb_build_array({m}.id::text, {m}.attempt)"
        )
    else:
        match = (
            f"replace(json_extract(t.args_kwargs, '$.args[0]'), '-', '') = {m}.id "
            f"AND json_extract(t.args_kwargs, '$.args[1]') = {m}.attempt "
            "AND json_array_length(t.args_kwargs, '$.args') = 2"
        )
    sql = (
        f"NOT EXISTS (SELECT 1 FROM {table} t WHERE t.task_path = %s "  # noqa: S608
        f"AND t.status IN (%s, %s) AND {match})"
    )
    params = [tasks.send_message.module_path, TaskResultStatus.READY, TaskResultStatus.RUNNING]
    # Table names from model metadata and SQL from this module; every value is bound.
    return RawSQL(sql, params, output_field=BooleanField())  # noqa: S611


# ---------------------------------------------------------------------------------------------
# 3. Reconcile unknown where the provider can be asked


def unknown_reconcile(now: datetime | None = None, client: httpx.Client | None = None) -> int:
    now = now or timezone.now()
    client = client or http_client()
    rows = list(
        Message.objects.filter(
            direction=Message.Direction.OUTGOING,
            status=Status.UNKNOWN,
            channel_type__in=[ct for ct, spec in providers.REGISTRY.items() if spec.reconcile],
            provider_message_id__isnull=False,
            status_updated_at__lt=now - RECONCILE_AFTER,
        )
        .values("id", "inbox_id", "channel_type", "provider_message_id")
        .order_by("status_updated_at")[:BATCH]
    )
    if not rows:
        return 0
    inboxes = Inbox.objects.in_bulk({row["inbox_id"] for row in rows})
    by_inbox: dict[uuid.UUID, list[StatusUpdate]] = defaultdict(list)
    for row in rows:
        inbox = inboxes[row["inbox_id"]]
        try:
            reconcile = providers.get(row["channel_type"]).reconcile
            assert reconcile is not None  # only reconcilable channel types were selected
            update = reconcile(client, inbox.config or {}, row["provider_message_id"], now)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.info("could not reconcile %s: %s", row["id"], exc)
            continue
        if update is not None:
            by_inbox[inbox.id].append(update)
    with transaction.atomic():
        return _apply(by_inbox)


# ---------------------------------------------------------------------------------------------
# 4. Expire undelivered messages


def messages_expire(now: datetime | None = None) -> int:
    now = now or timezone.now()
    reporting = [c for c in CHANNELS.values() if c.reports_delivered]
    total = 0
    with _exclusive("messages_expire") as mine:
        if not mine:
            return 0
        query = None
        for channel in reporting:
            part = Message.objects.filter(
                channel_type=channel.channel_type, queued_at__lt=now - channel.time_to_live
            )
            query = part if query is None else query | part
        rows = list(
            # Only what Tickmark sent can expire: an echo of a message sent from another app
            # is not ours to time out (DESIGN §5.1).
            query.filter(
                direction=Message.Direction.OUTGOING,
                origin=Message.Origin.TICKMARK,
                status__in=BELOW_DELIVERED,
            )
            .values("id", "inbox_id", "attempt", "provider_message_id", "channel_type")
            .order_by("queued_at")[:BATCH]
        )
        by_inbox: dict[uuid.UUID, list[StatusUpdate]] = defaultdict(list)
        for row in rows:
            ttl = CHANNELS[row["channel_type"]].time_to_live
            by_inbox[row["inbox_id"]].append(
                _sweep_update(
                    row["id"],
                    row["attempt"],
                    Status.EXPIRED,
                    now,
                    kind="expired",
                    code="expired",
                    title="Not delivered in time",
                    detail=f"No delivery report within {_human(ttl)}.",
                    provider_message_id=row["provider_message_id"] or "",
                )
            )
        total = _apply(by_inbox)
    return total


def _human(ttl: timedelta) -> str:
    if ttl % timedelta(days=1) == timedelta(0):
        return f"{ttl.days} days"
    return f"{int(ttl.total_seconds() // 3600)} hours"


# ---------------------------------------------------------------------------------------------
# 5. Give up on parked statuses


def parked_expire(now: datetime | None = None) -> int:
    now = now or timezone.now()
    windows: dict[timedelta, list[str]] = defaultdict(list)
    for channel_type in ChannelType.values:
        windows[providers.get(channel_type).webhook_retry_window].append(channel_type)
    total = 0
    with _exclusive("parked_expire") as mine:
        if not mine:
            return 0
        for window, channel_types in windows.items():
            total += StatusEvent.objects.filter(
                outcome=StatusEvent.Outcome.PARKED,
                message__isnull=True,
                received_at__lt=now - window,
                inbox__channel_type__in=channel_types,
            ).update(outcome=StatusEvent.Outcome.UNMATCHED)
    return total


# ---------------------------------------------------------------------------------------------
# 6. Forget widget contacts that never wrote


def widget_contacts_expire(now: datetime | None = None, max_batches: int = 20) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.TICKMARK_WIDGET_IDLE_CONTACT_HOURS)
    widget_inboxes = list(
        Inbox.objects.filter(channel_type=ChannelType.WEB_WIDGET).values_list("id", flat=True)
    )
    if not widget_inboxes:
        return 0
    idle = Contact.objects.filter(
        inbox_id__in=widget_inboxes, last_inbound_at__isnull=True, created_at__lt=cutoff
    ).exclude(Exists(Message.objects.filter(conversation__contact_id=OuterRef("pk"))))
    total = 0
    # One short transaction per batch: no long locks, and a flood is worked off in one run.
    for _ in range(max_batches):
        deleted, more = _idle_contacts_delete(idle)
        total += deleted
        if not more:
            break
    if total:
        log.info("deleted %d idle widget contacts", total)
    return total


def _idle_contacts_delete(idle: QuerySet[Contact]) -> tuple[int, bool]:
    """Delete one batch of idle contacts; return how many, and whether there may be more."""
    with _exclusive("widget_contacts_expire") as mine:
        if not mine:
            return 0, False
        batch = list(idle.order_by("created_at").values_list("id", flat=True)[:BATCH])
        if not batch:
            return 0, False
        # Lock the rows, then look again: a message written meanwhile has committed by now (and
        # keeps its contact), and one written from now on waits for this transaction and then
        # fails on the missing conversation instead of being deleted with it.
        list(Contact.objects.select_for_update().filter(id__in=batch).values_list("id"))
        list(
            Conversation.objects.select_for_update().filter(contact_id__in=batch).values_list("id")
        )
        still_idle = list(idle.filter(id__in=batch).values_list("id", flat=True))
        _, deleted = Contact.objects.filter(id__in=still_idle).delete()
    return deleted.get("inbox.Contact", 0), len(batch) == BATCH


# 7. Retention of recorded webhook calls

PRUNE_BATCH = 1000
PRUNE_MAX_BATCHES = 20  # per run; the next run (SWEEP_INTERVAL later) goes on


def deliveries_prune(
    now: datetime | None = None,
    *,
    batch: int = PRUNE_BATCH,
    max_batches: int = PRUNE_MAX_BATCHES,
) -> int:
    """Delete recorded webhook calls past their retention; return how many were deleted.

    Status events keep everything they need (status, times, error, raw status), so an old
    delivery goes entirely and its events' ``delivery`` link becomes null (the FK is SET_NULL).
    A delivery that an event still *parked* refers to is kept, body included, until that
    event is applied or given up (``parked_expire``): it is what explains a status waiting for
    its message. Each batch is one short transaction (no long locks); one worker at a time.
    """
    now = now or timezone.now()
    forbidden = WebhookDelivery.Verdict.FORBIDDEN
    rejected_before = now - timedelta(days=settings.TICKMARK_KEEP_REJECTED_DAYS)
    accepted_before = now - timedelta(days=settings.TICKMARK_KEEP_ACCEPTED_DAYS)
    still_parked = StatusEvent.objects.filter(
        delivery_id=OuterRef("id"), outcome=StatusEvent.Outcome.PARKED
    )
    expired = WebhookDelivery.objects.filter(
        Q(verdict=forbidden, received_at__lt=rejected_before)
        | (~Q(verdict=forbidden) & Q(received_at__lt=accepted_before))
    ).exclude(Exists(still_parked))
    total = 0
    for _ in range(max_batches):
        with _exclusive("deliveries_prune") as mine:
            if not mine:
                break
            ids = list(expired.order_by("received_at").values_list("id", flat=True)[:batch])
            if ids:
                StatusEvent.objects.filter(delivery_id__in=ids).update(delivery=None)
                # only("id"): never load the bodies just to delete them.
                WebhookDelivery.objects.filter(id__in=ids).only("id").delete()
        total += len(ids)
        if len(ids) < batch:
            break
    return total


# ---------------------------------------------------------------------------------------------


def _sweep_update(
    message_id: uuid.UUID,
    attempt: int,
    status: str,
    now: datetime,
    *,
    kind: str,
    code: str,
    title: str,
    detail: str,
    provider_message_id: str = "",
) -> StatusUpdate:
    # Addressed by correlation id, so messages without a provider id are found too; the
    # dedupe key differs from the send result's, so a late real answer still counts.
    return StatusUpdate(
        provider_message_id=provider_message_id,
        correlation_id=correlation.make(message_id, attempt),
        status=status,
        raw_status=f"sweep:{kind}",
        occurred_at=now,
        dedupe_key=f"sweep:{kind}:{message_id}:{attempt}",
        error_code=code,
        error_title=title,
        error_detail=detail,
    )


def _apply(by_inbox: dict[uuid.UUID, list[StatusUpdate]]) -> int:
    if not by_inbox:
        return 0
    inboxes = Inbox.objects.in_bulk(list(by_inbox))
    changed = 0
    for inbox_id, updates in by_inbox.items():
        result = services.status_updates_apply(
            inbox=inboxes[inbox_id], updates=updates, source=StatusEvent.Source.SWEEP
        )
        changed += len(result.changes)
    return changed
