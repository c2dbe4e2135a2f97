"""Deliver outgoing integrator webhooks (DESIGN §8): sign, POST, log, retry, give up.

``deliver_due()`` runs in the worker (task ``deliver_outgoing_webhooks``). Each round claims due
events with ``SELECT … FOR UPDATE SKIP LOCKED`` and leases them (``next_attempt_at`` pushed
ahead), commits, then does the HTTP calls outside any transaction — so any number of workers
share the work, a slow receiver never holds a database lock, and an event whose worker died
is picked up again when its lease runs out.

Order per message: an event is only claimed when no older pending event of the same message
exists for that subscription. Events of one message are recorded under the message's row lock,
so their ids follow the order of the changes (status-rank order; receivers can also rely on
``status_updated_at``).

Fairness (issue #10): webhooks run in their own worker lane (``statuses.lanes``), never in front
of sends. A round takes the due heads of line round-robin across accounts (every account's
oldest event first, then every account's second …), at most
``WEBHOOK_MAX_CONCURRENT_PER_SUBSCRIPTION`` per subscription, and posts them concurrently
(``WEBHOOK_CONCURRENCY`` at a time), each bounded by ``WEBHOOK_TIMEOUT`` seconds in total — so
one account's slow endpoints cost the others at most one round's wait, never a queue.

Failures back off exponentially (``RETRY_BASE * 2 ** (attempts - 1)``, capped at ``RETRY_MAX``). A
subscription that has failed continuously for ``DISABLE_AFTER`` is disabled with a visible
reason and its pending events are given up.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from statuses import netguard, outgoing, signing
from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription
from statuses.providers import _http

log = logging.getLogger(__name__)

BATCH_SIZE = 50
MAX_ROUNDS = 20  # times BATCH_SIZE events per task run; the task re-enqueues itself for the rest
CLAIM_EVERY = 1.0  # seconds: while POSTs are in flight, look for newly due events this often
LEASE = timedelta(seconds=60)  # > the longest HTTP call; after it, a crashed claim is retried
RETRY_BASE = timedelta(seconds=10)
RETRY_MAX = timedelta(hours=1)
DISABLE_AFTER = timedelta(hours=24)
USER_AGENT = "Tickmark-Webhooks/1.0"

Pending = OutgoingEvent.State.PENDING


@dataclass
class DeliveryRound:
    delivered: int = 0
    failed: int = 0


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed tries (10 s, 20 s, 40 s … 1 h)."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_MAX)


def deliver_due(*, now: datetime | None = None, client: httpx.Client | None = None) -> int:
    """Deliver every due event; return how many were delivered (``next_due`` says when to
    come back for the later ones).

    A pipeline, not rounds: up to ``WEBHOOK_CONCURRENCY`` POSTs are in flight, and each freed
    slot goes to the next head of line in round-robin order — skipping subscriptions and
    accounts already at their in-flight cap, so a slow receiver holds at most its share.

    ``now`` is injectable so tests can simulate time (backoff, the 24-hour disable rule).
    """
    fixed_now = now
    delivered = 0
    claimed_total = 0
    own_client = client is None
    client = client or netguard.http_client(timeout=timeout(), headers={"User-Agent": USER_AGENT})
    slots = max(settings.WEBHOOK_CONCURRENCY, 1)
    pool = ThreadPoolExecutor(slots, thread_name_prefix="tickmark-hook")
    in_flight: dict[Future[Answer], OutgoingEvent] = {}
    try:
        while True:
            free = slots - len(in_flight)
            if free > 0 and claimed_total < MAX_ROUNDS * BATCH_SIZE:
                busy = list(in_flight.values())
                claimed = _claim(fixed_now or timezone.now(), limit=free, busy=busy)
                claimed_total += len(claimed)
                for event in claimed:
                    in_flight[pool.submit(_post, client, event, fixed_now)] = event
            if not in_flight:
                break
            # Record each answer as it arrives; look for newly due events at least every second.
            done, _ = wait(in_flight, timeout=CLAIM_EVERY, return_when=FIRST_COMPLETED)
            for future in done:
                delivered += _record(in_flight.pop(future), future.result(), fixed_now)
    finally:
        pool.shutdown(wait=True)
        if own_client:
            client.close()
    return delivered


def timeout() -> httpx.Timeout:
    return httpx.Timeout(settings.WEBHOOK_TIMEOUT, connect=settings.WEBHOOK_CONNECT_TIMEOUT)


def _heads_of_line():
    """Pending events with no older pending event of the same message and subscription."""
    earlier_pending = OutgoingEvent.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        message_id=OuterRef("message_id"),
        state=Pending,
        id__lt=OuterRef("id"),
    )
    return OutgoingEvent.objects.filter(state=Pending, subscription__is_active=True).exclude(
        Exists(earlier_pending)
    )


def _fair_candidates(now: datetime, limit: int, busy: list[OutgoingEvent]) -> list[int]:
    """Ids of due heads of line in round-robin order across accounts (every account's oldest
    first, then every account's second …), within the per-subscription and per-account caps
    on deliveries in flight (``busy`` are this worker's)."""
    per_subscription = settings.WEBHOOK_MAX_CONCURRENT_PER_SUBSCRIPTION
    per_account = settings.WEBHOOK_MAX_CONCURRENT_PER_ACCOUNT
    oldest_first = [F("next_attempt_at").asc(), F("id").asc()]
    rows = (
        _heads_of_line()
        .filter(next_attempt_at__lte=now)
        .annotate(
            account_turn=Window(
                RowNumber(), partition_by=[F("subscription__account_id")], order_by=oldest_first
            ),
            subscription_turn=Window(
                RowNumber(), partition_by=[F("subscription_id")], order_by=oldest_first
            ),
        )
        .filter(subscription_turn__lte=per_subscription, account_turn__lte=per_account)
        .order_by("account_turn", "next_attempt_at", "id")
        .values_list("id", "subscription_id", "subscription__account_id")[:BATCH_SIZE]
    )
    by_subscription = Counter(e.subscription_id for e in busy)
    by_account = Counter(e.subscription.account_id for e in busy)
    chosen: list[int] = []
    for event_id, subscription_id, account_id in rows:
        if len(chosen) >= limit:
            break
        if by_subscription[subscription_id] >= per_subscription:
            continue
        if by_account[account_id] >= per_account:
            continue
        by_subscription[subscription_id] += 1
        by_account[account_id] += 1
        chosen.append(event_id)
    return chosen


def _claim(
    now: datetime, limit: int = BATCH_SIZE, busy: list[OutgoingEvent] | None = None
) -> list[OutgoingEvent]:
    candidates = _fair_candidates(now, limit, busy or [])
    if not candidates:
        return []
    with transaction.atomic():
        # Window functions cannot be locked directly: lock the chosen rows, skipping any another
        # worker took meanwhile, and keep the fair order.
        locked = {
            event.id: event
            for event in OutgoingEvent.objects.filter(
                id__in=candidates, state=Pending, next_attempt_at__lte=now
            )
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription")
        }
        events = [locked[i] for i in candidates if i in locked]
        if events:
            OutgoingEvent.objects.filter(id__in=[e.id for e in events]).update(
                next_attempt_at=now + LEASE
            )
    return events


@dataclass
class Answer:
    http_status: int | None
    error: str
    duration_ms: int
    done_at: datetime


def _post(client: httpx.Client, event: OutgoingEvent, fixed_now: datetime | None) -> Answer:
    """Sign and POST one event (no database here: it runs in the delivery pool's threads)."""
    subscription = event.subscription
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True).encode()
    sent_at = fixed_now or timezone.now()
    headers = {
        "Content-Type": "application/json",
        signing.HEADER: signing.sign(subscription.secret, body, int(sent_at.timestamp())),
        "X-Tickmark-Event": event.event_type,
        "X-Tickmark-Event-Id": str(event.payload.get("id", "")),
    }
    started = time.monotonic()
    http_status: int | None = None
    error = ""
    try:
        # The receiver's body is never read, kept nor shown: a URL pointing at an internal
        # service would otherwise read that service's answer back (SSRF, issue #10).
        with client.stream("POST", subscription.url, content=body, headers=headers) as response:
            http_status = response.status_code
        if not 200 <= http_status < 300:
            error = f"HTTP {http_status}"
    except httpx.HTTPError as exc:
        # A generic reason ("connection failed" …), never the exception text (no port scans).
        error = _http.describe(exc)
    except Exception:  # anything else: a failed try, not a crash of the delivery lane
        log.exception("webhook delivery to subscription %s failed", subscription.id)
        error = "delivery failed"
    return Answer(
        http_status=http_status,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
        done_at=fixed_now or timezone.now(),
    )


def _record(event: OutgoingEvent, answer: Answer, fixed_now: datetime | None) -> int:
    subscription = event.subscription
    ok = not answer.error
    with transaction.atomic():
        # Pin the subscription; if it was deleted meanwhile, its events went with it.
        alive = outgoing.pinned(WebhookSubscription.objects.filter(id=subscription.id))
        if not alive or not OutgoingEvent.objects.filter(id=event.id).exists():
            return 0
        OutgoingAttempt.objects.create(
            event=event,
            attempted_at=answer.done_at,
            http_status=answer.http_status,
            error=answer.error,
            duration_ms=answer.duration_ms,
            response_body="",
        )
        attempts = event.attempts + 1
        if ok:
            OutgoingEvent.objects.filter(id=event.id).update(
                state=OutgoingEvent.State.DELIVERED, attempts=attempts, delivered_at=answer.done_at
            )
            WebhookSubscription.objects.filter(
                id=subscription.id, failing_since__isnull=False
            ).update(failing_since=None)
            return 1
        OutgoingEvent.objects.filter(id=event.id).update(
            attempts=attempts, next_attempt_at=answer.done_at + backoff(attempts)
        )
        _record_failure(subscription.id, answer.done_at, answer.error)
    log.info("webhook %s to %s failed: %s", event.id, subscription.url, answer.error)
    return 0


def _record_failure(subscription_id: int, now: datetime, error: str) -> None:
    subscription = (
        WebhookSubscription.objects.select_for_update().filter(id=subscription_id).first()
    )
    if subscription is None or not subscription.is_active:
        return
    if subscription.failing_since is None:
        subscription.failing_since = now
        subscription.save(update_fields=["failing_since"])
        return
    if now - subscription.failing_since < DISABLE_AFTER:
        return
    subscription.is_active = False
    subscription.disabled_reason = (
        f"Disabled at {now.isoformat()}: every delivery failed since "
        f"{subscription.failing_since.isoformat()} (last error: {error})."
    )
    subscription.save(update_fields=["is_active", "disabled_reason"])
    OutgoingEvent.objects.filter(subscription_id=subscription_id, state=Pending).update(
        state=OutgoingEvent.State.FAILED
    )
    log.warning("webhook subscription %s disabled: %s", subscription_id, error)


def next_due() -> datetime | None:
    """When the next pending event of an active subscription is due (backoff or lease)."""
    return OutgoingEvent.objects.filter(state=Pending, subscription__is_active=True).aggregate(
        at=Min("next_attempt_at")
    )["at"]
