"""The status vocabulary and the merge rule (DESIGN §3). Pure functions, no ORM.

A message's status is a function of the *set* of status events of its current attempt, never of
their arrival order, so late, early, duplicated and reordered provider callbacks all converge on
the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    UNKNOWN = "unknown", "Unknown"
    SENT = "sent", "Sent"
    RECEIVED = "received", "Received"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    DELETED = "deleted", "Deleted"


class Tick(models.TextChoices):
    PENDING = "pending", "Pending"
    SINGLE = "single", "Sent"
    DOUBLE = "double", "Delivered"
    BLUE = "blue", "Read"
    FAILED = "failed", "Failed"


# An event whose provider status we do not recognise is stored with this normalized status: it
# is kept in the log and changes nothing.
UNRECOGNIZED = ""

PROGRESS_RANK: dict[str, int] = {
    Status.QUEUED: 0,
    Status.UNKNOWN: 1,
    Status.SENT: 2,
    Status.RECEIVED: 3,
    Status.DELIVERED: 4,
    Status.READ: 5,
}

TICKS: dict[str, str] = {
    Status.QUEUED: Tick.PENDING,
    Status.UNKNOWN: Tick.PENDING,
    Status.SENT: Tick.SINGLE,
    Status.RECEIVED: Tick.SINGLE,
    Status.DELIVERED: Tick.DOUBLE,
    Status.READ: Tick.BLUE,
    Status.FAILED: Tick.FAILED,
    Status.EXPIRED: Tick.FAILED,
    Status.DELETED: Tick.DOUBLE,
}

ALWAYS_TERMINAL = frozenset({Status.READ, Status.FAILED, Status.EXPIRED, Status.DELETED})
RESENDABLE = frozenset({Status.FAILED, Status.EXPIRED})
# Statuses a later event can still move a message out of (used by sweeps and watermarks).
BELOW_DELIVERED = frozenset({Status.QUEUED, Status.UNKNOWN, Status.SENT, Status.RECEIVED})

# The lifecycle timestamp (a field of ``Merged`` and of the message) each status sets.
TIMESTAMP_OF: dict[str, str] = {
    Status.SENT: "sent_at",
    Status.RECEIVED: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
    Status.EXPIRED: "failed_at",
}

# A provider time further ahead of when we received the event than this is a wrong clock: the
# time received stands in for it (DESIGN §5.1). The event itself keeps the provider's raw time.
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Event:
    """What the merge rule needs of one stored status event."""

    status: str
    occurred_at: datetime
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""
    # When Tickmark received it (None: trust ``occurred_at`` as is).
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Merged:
    status: str
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: str
    error_title: str
    error_detail: str


def tick_for(status: str) -> str:
    return TICKS[status]


def event_time(event: Event) -> datetime:
    """The provider's time of an event, or when we received it if the provider's clock runs
    more than ``FUTURE_TOLERANCE`` ahead of ours."""
    received = event.received_at
    if received is not None and event.occurred_at > received + FUTURE_TOLERANCE:
        return received
    return event.occurred_at


def not_before(moment: datetime | None, floor: datetime | None) -> datetime | None:
    """``moment`` raised to ``floor`` (a stage never happens before the stage it follows)."""
    if moment is None or floor is None:
        return moment
    return max(moment, floor)


def stage_floor(stamp: str, merged: Merged, created_at: datetime | None) -> datetime | None:
    """The time the lifecycle stamp ``stamp`` of ``merged`` may not precede."""
    previous = {
        "sent_at": (),
        "delivered_at": (merged.sent_at,),
        "read_at": (merged.delivered_at, merged.sent_at),
        "failed_at": (merged.sent_at,),
    }[stamp]
    return next((moment for moment in previous if moment is not None), created_at)


def merge(events: Iterable[Event], created_at: datetime | None = None) -> Merged:
    """Return the status, per-status timestamps and error defined by a set of events.

    Order-independent and duplicate-proof: every quantity is a max/min over the set, and the
    error comes from the earliest failure (ties broken by the error fields themselves).

    Lifecycle timestamps are monotonic (DESIGN §5.1): ``created_at ≤ sent_at ≤ delivered_at ≤
    read_at`` (and a failure not before the send), each the later of the provider's earliest
    time for that stage and the previous stage's time — provider clocks drift and some report
    to the minute. Still a pure function of the event set and ``created_at``.
    """
    best_progress = Status.QUEUED
    best_rank = 0
    deleted = False
    failures: list[Event] = []
    expiries: list[Event] = []
    earliest: dict[str, datetime] = {}

    for event in events:
        status = event.status
        if status == UNRECOGNIZED:
            continue
        rank = PROGRESS_RANK.get(status)
        if rank is not None and rank > best_rank:
            best_rank, best_progress = rank, status
        if status == Status.DELETED:
            deleted = True
        elif status == Status.FAILED:
            failures.append(event)
        elif status == Status.EXPIRED:
            expiries.append(event)
        # "sent" evidence also comes from anything further along the way (received counts).
        key = Status.SENT if status == Status.RECEIVED else status
        previous = earliest.get(key)
        moment = event_time(event)
        if previous is None or moment < previous:
            earliest[key] = moment

    if deleted:
        status = Status.DELETED
    elif best_rank >= PROGRESS_RANK[Status.DELIVERED]:
        status = best_progress
    elif failures:
        status = Status.FAILED
    elif expiries:
        status = Status.EXPIRED
    else:
        status = best_progress

    error_source: Event | None = None
    if status == Status.FAILED:
        error_source = min(failures, key=_failure_order)
    elif status == Status.EXPIRED:
        error_source = min(expiries, key=_failure_order)

    read_at = earliest.get(Status.READ)
    delivered_at = earliest.get(Status.DELIVERED)
    if delivered_at is None:
        delivered_at = read_at  # read implies delivered (Meta skips "delivered" on a quick read)
    failed_at = None
    if status in (Status.FAILED, Status.EXPIRED) and error_source is not None:
        failed_at = event_time(error_source)

    sent_at = not_before(earliest.get(Status.SENT), created_at)
    floor = sent_at or created_at
    delivered_at = not_before(delivered_at, floor)
    read_at = not_before(read_at, delivered_at or floor)
    failed_at = not_before(failed_at, floor)

    return Merged(
        status=status,
        sent_at=sent_at,
        delivered_at=delivered_at,
        read_at=read_at,
        failed_at=failed_at,
        error_code=error_source.error_code if error_source else "",
        error_title=error_source.error_title if error_source else "",
        error_detail=error_source.error_detail if error_source else "",
    )


def _failure_order(event: Event) -> tuple:
    return (event_time(event), event.error_code, event.error_title, event.error_detail)
