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

Failures back off exponentially (``RETRY_BASE * 2 ** (attempts - 1)``, capped at ``RETRY_MAX``). A
subscription that has failed continuously for ``DISABLE_AFTER`` is disabled with a visible
reason and its pending events are given up.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.db import transaction
from django.db.models import Exists, Min, OuterRef
from django.utils import timezone

from statuses import netguard, signing
from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription
from statuses.providers import _http

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
BATCH_SIZE = 50
MAX_ROUNDS = 20  # per task run; the task re-enqueues itself for the rest
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
    """Deliver every due event; return how many were delivered. Re-enqueue for later ones.

    ``now`` is injectable so tests can simulate time (backoff, the 24-hour disable rule).
    """
    fixed_now = now
    delivered = 0
    own_client = client is None
    client = client or netguard.http_client(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})
    try:
        for _ in range(MAX_ROUNDS):
            current = fixed_now or timezone.now()
            claimed = _claim(current)
            if not claimed:
                break
            for event in claimed:
                delivered += _deliver_one(client, event, fixed_now)
    finally:
        if own_client:
            client.close()
    _schedule_next(fixed_now or timezone.now())
    return delivered


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


def _claim(now: datetime) -> list[OutgoingEvent]:
    with transaction.atomic():
        events = list(
            _heads_of_line()
            .filter(next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription")[:BATCH_SIZE]
        )
        if events:
            OutgoingEvent.objects.filter(id__in=[e.id for e in events]).update(
                next_attempt_at=now + LEASE
            )
    return events


def _deliver_one(client: httpx.Client, event: OutgoingEvent, fixed_now: datetime | None) -> int:
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
    duration_ms = int((time.monotonic() - started) * 1000)
    done_at = fixed_now or timezone.now()
    ok = not error
    with transaction.atomic():
        OutgoingAttempt.objects.create(
            event=event,
            attempted_at=done_at,
            http_status=http_status,
            error=error,
            duration_ms=duration_ms,
            response_body="",
        )
        attempts = event.attempts + 1
        if ok:
            OutgoingEvent.objects.filter(id=event.id).update(
                state=OutgoingEvent.State.DELIVERED, attempts=attempts, delivered_at=done_at
            )
            WebhookSubscription.objects.filter(
                id=subscription.id, failing_since__isnull=False
            ).update(failing_since=None)
            return 1
        OutgoingEvent.objects.filter(id=event.id).update(
            attempts=attempts, next_attempt_at=done_at + backoff(attempts)
        )
        _record_failure(subscription.id, done_at, error)
    log.info("webhook %s to %s failed: %s", event.id, subscription.url, error)
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


def _schedule_next(now: datetime) -> None:
    """Enqueue the task again for the next due event (backoff or lease), if any."""
    from statuses import tasks

    next_due = OutgoingEvent.objects.filter(state=Pending, subscription__is_active=True).aggregate(
        at=Min("next_attempt_at")
    )["at"]
    if next_due is None:
        return
    run_after = max(next_due, now)
    tasks.deliver_outgoing_webhooks.using(run_after=run_after).enqueue()
