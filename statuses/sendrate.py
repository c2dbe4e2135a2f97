"""Pace each inbox's sends at its provider's rate, across all workers together (DESIGN §16).

One row per inbox (``SendRateBucket``) in the database every worker already uses is the shared
limiter. Why the database and not Redis: the worker needs only the database (Redis is optional
and absent in the embedded SQLite mode, ``make run``), a send already costs a dozen statements,
and a database outage is already survived by the lanes (``statuses.lanes``/``dbretry``); a
second store would be a second thing to survive. The row is read ``FOR UPDATE`` and written in
one short transaction (PostgreSQL row lock; SQLite's ``BEGIN IMMEDIATE`` write lock), on the
database's clock.

The pace is GCRA, the token bucket kept as one timestamp (``next_free``): a send may go at
``max(now, next_free - tolerance)`` and pushes ``next_free`` on by ``1 / rate``; ``tolerance``
lets a burst of ``burst`` sends go at once. Over any window of T seconds at most
``rate * T + burst`` sends go.

A send whose turn is at most ``SEND_RATE_MAX_WAIT`` away takes it and its thread sleeps until
then (keeps the achieved rate at the configured one). A later turn is not taken: the send is
put back in the queue to run at its *wake-up* time, a second schedule (``wake_at``) that spaces
deferred sends at the inbox's full rate — so the worker never spins over a backlog, and a slow
inbox never holds a worker thread for long.

Interactive replies first: campaign ("bulk") sends use the bucket only down to a reserve of
``reserve`` sends (``burst // 2``), which only interactive sends may take — a reply goes at
once even while a campaign keeps the bucket empty. (Ahead of the bucket, the send queue itself
runs interactive tasks before campaign ones: ``tasks.CAMPAIGN_PRIORITY``.)

A provider 429 halves the inbox's rate (once per second at most, down to 1/64) and stops the
whole inbox until its Retry-After; the rate then climbs back linearly to the full rate over
``SEND_RATE_RECOVERY`` seconds (additive increase, multiplicative decrease, as TCP does).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import models, transaction

from statuses.catalogue import ChannelType
from statuses.dbretry import DB_ERRORS
from statuses.models import SendRateBucket

log = logging.getLogger(__name__)

# Messages per second per inbox when ``Inbox.max_send_rate`` is empty: the providers' documented
# default limits (read 2026-11), None where nothing of ours needs pacing.
DEFAULT_RATES: dict[str, float | None] = {
    # "For each registered business phone number, Cloud API supports up to 80 messages per
    # second (mps) by default, and up to 1,000 mps by automatic upgrade" (inbound included)
    # — developers.facebook.com/documentation/business-messaging/whatsapp/throughput
    ChannelType.WHATSAPP_CLOUD: 80.0,
    # 360dialog hosts on the Cloud API: "up to 80 messages per second"
    # — docs.360dialog.com/partner/get-started/billing-and-invocing
    ChannelType.WHATSAPP_360DIALOG: 80.0,
    # "The text-only throughput for a WhatsApp sender is set to 10 MPS by default" (up to 50 on
    # request; 1.5 MPS with media) — twilio.com/docs/whatsapp/best-practices-and-faqs
    ChannelType.TWILIO_WHATSAPP: 10.0,
    # Long code: "1 SMS message segment per-second, per-number"; toll-free 3 MPS, short code 30+
    # (raise max_send_rate for those) — twilio.com/help/faq/twilio-basics/what-are-the-limits-
    # on-outbound-calls-and-sms-messages-per-second. Twilio queues faster requests for up to
    # 4 hours, then fails them: pacing here keeps the queue ours (pausable, visible).
    ChannelType.TWILIO_SMS: 1.0,
    # Bandwidth documents no per-number rate in what we could read (US 10DLC throughput is set
    # per campaign by the carriers): 1 msg/s, the US long-code pace, until the tenant sets it.
    ChannelType.BANDWIDTH_SMS: 1.0,
    # Send API: "300 calls per second per Facebook Page" for text, links, reactions, stickers
    # (10 per second with audio or video) — developers.facebook.com/documentation/business-
    # messaging/messenger-platform/overview/rate-limiting
    ChannelType.FACEBOOK: 300.0,
    # The same page, Messenger API for Instagram: 300 calls per second per professional account.
    ChannelType.INSTAGRAM: 300.0,
    # "The API will not allow bulk notifications to more than ~30 users per second"; 1 message
    # per second within one chat — core.telegram.org/bots/faq#broadcasting-to-users
    ChannelType.TELEGRAM: 30.0,
    # "Other API endpoints: 2,000 requests per second" per channel (push included)
    # — developers.line.biz/en/reference/messaging-api/#rate-limits
    ChannelType.LINE: 2000.0,
    # Viber's REST bot API publishes no send rate: 30 msg/s, as Telegram's bots, our choice.
    ChannelType.VIBER: 30.0,
    # TikTok's business messaging API publishes no send rate we could find: 10 msg/s, our choice.
    ChannelType.TIKTOK: 10.0,
    # SMTP: the server decides (Amazon SES starts accounts at 14/s): 10 msg/s, our choice.
    ChannelType.EMAIL: 10.0,
    # Our own: the integrator's endpoint and the web widget's socket are not paced.
    ChannelType.API: None,
    ChannelType.WEB_WIDGET: None,
}

MIN_FACTOR = 1 / 64
# Two 429s within this many seconds are one congestion signal: halve once.
CUT_INTERVAL = 1.0


@dataclass(frozen=True)
class Pace:
    """A bucket row's state (see ``SendRateBucket``)."""

    next_free: float = 0.0
    wake_at: float = 0.0
    factor: float = 1.0
    slowed_at: float = 0.0
    blocked_until: float = 0.0

    def factor_at(self, t: float) -> float:
        """The share of the configured rate allowed at ``t``: cut by 429s, climbing back."""
        if self.factor >= 1.0:
            return 1.0
        since = max(0.0, t - max(self.slowed_at, self.blocked_until))
        return min(1.0, self.factor + since / settings.SEND_RATE_RECOVERY)


@dataclass(frozen=True)
class Turn:
    """The limiter's answer: go after ``wait`` seconds, or (not ``granted``) retry then."""

    granted: bool
    wait: float


def rate_of(inbox: object) -> float | None:
    """The inbox's configured rate (msg/s), its channel's default, or None (not paced)."""
    configured = getattr(inbox, "max_send_rate", None)
    if configured:
        return float(configured)
    return DEFAULT_RATES.get(getattr(inbox, "channel_type", ""))


def burst_of(rate: float) -> int:
    """Sends that may go at once: ``SEND_RATE_BURST`` seconds' worth, at least one."""
    return max(1, math.ceil(rate * settings.SEND_RATE_BURST))


def decide(
    pace: Pace, *, rate: float, now: float, bulk: bool, max_wait: float
) -> tuple[Pace, Turn]:
    """Take a turn for one send (pure: the caller stores the new pace)."""
    start = max(now, pace.blocked_until)
    interval = 1.0 / (rate * max(pace.factor_at(start), MIN_FACTOR))
    burst = burst_of(rate)
    reserve = burst // 2 if bulk else 0
    tolerance = (burst - 1 - reserve) * interval
    due = max(pace.next_free, start)
    slot = max(start, due - tolerance)
    if slot - now <= max_wait:
        return replace(pace, next_free=due + interval), Turn(True, max(0.0, slot - now))
    # Woken at the full rate, not a slowed one: once the rate has climbed back they are ready.
    wake = max(pace.wake_at, slot)
    return replace(pace, wake_at=wake + 1.0 / rate), Turn(False, wake - now)


def slowed(pace: Pace, *, now: float, retry_after: float | None) -> Pace:
    """The pace after a provider's 429: half the rate, and the inbox stopped for Retry-After."""
    factor = pace.factor_at(now)
    if now - pace.slowed_at >= CUT_INTERVAL:
        factor = max(MIN_FACTOR, factor / 2)
    blocked_until = pace.blocked_until
    if retry_after:
        blocked_until = max(blocked_until, now + min(retry_after, 3600.0))
    return replace(pace, factor=factor, slowed_at=now, blocked_until=blocked_until)


def acquire(*, inbox: object, bulk: bool) -> Turn:
    """Take the next turn for a send of ``inbox`` (shared by all workers); no pace → now.

    Called last in the send's claim transaction (``sending._claim``), whose commit releases the
    row: no savepoint of its own (two round trips fewer), and alone it is its own transaction.
    """
    rate = rate_of(inbox)
    if rate is None:
        return Turn(True, 0.0)
    inbox_id = inbox.pk  # type: ignore[attr-defined]
    with transaction.atomic(savepoint=False):
        pace, now = _locked(inbox_id)
        new, turn = decide(
            pace, rate=rate, now=now, bulk=bulk, max_wait=settings.SEND_RATE_MAX_WAIT
        )
        _store(inbox_id, new)
    return turn


def slow_down(*, inbox: object, retry_after: float | None) -> None:
    """Slow the inbox after a provider's 429; best effort (the send's own retry still waits)."""
    rate = rate_of(inbox)
    if rate is None:
        return
    inbox_id = inbox.pk  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            pace, now = _locked(inbox_id)
            new = slowed(pace, now=now, retry_after=retry_after)
            _store(inbox_id, new)
    except DB_ERRORS as exc:
        log.warning("inbox %s: could not record a 429 (%s)", inbox_id, type(exc).__name__)
        return
    log.warning(
        "inbox %s: provider answered 429; rate %.3g -> %.3g msg/s%s",
        inbox_id,
        rate * pace.factor_at(now),
        rate * new.factor,
        f", paused {new.blocked_until - now:.0f} s" if new.blocked_until > now else "",
    )


def current_rate(inbox: object) -> tuple[float | None, float]:
    """(configured rate, seconds the inbox is still paused) now, scaled by any 429 slow-down.

    For people (the admin): read without a lock, on this machine's clock.
    """
    rate = rate_of(inbox)
    if rate is None:
        return None, 0.0
    row = SendRateBucket.objects.filter(inbox_id=inbox.pk).first()  # type: ignore[attr-defined]
    if row is None:
        return rate, 0.0
    pace = _pace(row)
    now = time.time()
    return rate * pace.factor_at(now), max(0.0, pace.blocked_until - now)


# ---------------------------------------------------------------------------------------------


class EpochNow(models.Func):
    """The database clock in seconds since the epoch, to the millisecond or better."""

    template = "extract(epoch from clock_timestamp())::float8"
    output_field = models.FloatField()

    def as_sqlite(self, compiler: object, connection: object, **extra: object) -> tuple:
        return "((julianday('now') - 2440587.5) * 86400.0)", []


def _locked(inbox_id: uuid.UUID) -> tuple[Pace, float]:
    rows = SendRateBucket.objects.select_for_update().filter(inbox_id=inbox_id)
    row = rows.annotate(db_now=EpochNow()).first()
    if row is None:
        SendRateBucket.objects.bulk_create(
            [SendRateBucket(inbox_id=inbox_id)], ignore_conflicts=True
        )
        row = rows.annotate(db_now=EpochNow()).get()
    return _pace(row), float(row.db_now)


def _pace(row: SendRateBucket) -> Pace:
    return Pace(row.next_free, row.wake_at, row.factor, row.slowed_at, row.blocked_until)


def _store(inbox_id: uuid.UUID, pace: Pace) -> None:
    SendRateBucket.objects.filter(inbox_id=inbox_id).update(
        next_free=pace.next_free,
        wake_at=pace.wake_at,
        factor=pace.factor,
        slowed_at=pace.slowed_at,
        blocked_until=pace.blocked_until,
    )
