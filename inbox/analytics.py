"""Delivery analytics (DESIGN §15): counts, rates, time-to-deliver and top errors, in the database.

Outgoing messages created in ``[since, until)`` of one account, optionally narrowed to an inbox,
a channel family or a WhatsApp template name, optionally grouped. Whatever the number of
messages, one answer costs a fixed number of queries:

1. the counts per (group, status), with ``COUNT(delivered_at)`` and ``COUNT(read_at)`` — the
   totals are their sums,
2. on PostgreSQL, the ``percentile_cont`` of ``delivered_at - sent_at`` and ``read_at - sent_at``
   over the delivered messages, for the totals and (with ``group_by``) once more per group,
3. the failures per (group, channel type, error code) — few rows: one per distinct code,
4. on SQLite instead of 2, which has no ``percentile_cont``: the two duration columns, sorted by
   the database, from which the same linear-interpolation percentiles are read in Python.

No per-message Python loop runs on PostgreSQL; the SQLite fallback (the embedded, small-data mode)
reads one number per delivered message.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDay, TruncHour

from inbox.models import Account, Inbox, Message
from statuses import errors
from statuses.catalogue import CHANNELS
from statuses.machine import Status

GROUP_BY = ("channel", "inbox", "template", "day", "hour")
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
TOP_ERRORS = 5
MAX_BUCKETS = 24 * 62  # hour buckets over two months, day buckets over four years
FAILED = (Status.FAILED, Status.EXPIRED)

TIME_TO_DELIVER = ExpressionWrapper(F("delivered_at") - F("sent_at"), output_field=DurationField())
TIME_TO_READ = ExpressionWrapper(F("read_at") - F("sent_at"), output_field=DurationField())


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY expr)`` (NULLs are skipped).

    The three fractions of one expression share a single sort: PostgreSQL shares the transition
    state of ordered-set aggregates with identical inputs.
    """

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class DeliveryQuery:
    since: datetime
    until: datetime
    inbox: Inbox | None = None
    family: str | None = None
    template: str | None = None
    group_by: str | None = None


class TooManyBuckets(ValueError):
    pass


def _family_of_channel_type() -> Case:
    families: dict[str, list[str]] = defaultdict(list)
    for channel in CHANNELS.values():
        families[channel.family].append(channel.channel_type)
    return Case(
        *(When(channel_type__in=types, then=Value(family)) for family, types in families.items()),
        output_field=CharField(),
    )


def _group_expression(group_by: str) -> Any:
    return {
        "channel": _family_of_channel_type(),
        "inbox": F("inbox_id"),
        "template": KeyTextTransform("name", "template"),
        "day": TruncDay("created_at", tzinfo=UTC),
        "hour": TruncHour("created_at", tzinfo=UTC),
    }[group_by]


def _messages(account: Account, query: DeliveryQuery) -> QuerySet[Message]:
    messages = Message.objects.filter(
        account=account,
        direction=Message.Direction.OUTGOING,
        created_at__gte=query.since,
        created_at__lt=query.until,
    )
    if query.inbox is not None:
        messages = messages.filter(inbox=query.inbox)
    if query.family:
        types = [c.channel_type for c in CHANNELS.values() if c.family == query.family]
        messages = messages.filter(channel_type__in=types)
    if query.template:
        messages = messages.filter(template__name=query.template)
    return messages.order_by()


def _percentiles() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, fraction in PERCENTILES.items():
        found[f"ttd_{name}"] = PercentileCont(
            TIME_TO_DELIVER, fraction, output_field=DurationField()
        )
        found[f"ttr_{name}"] = PercentileCont(TIME_TO_READ, fraction, output_field=DurationField())
    return found


def _zero_row() -> dict[str, Any]:
    row: dict[str, Any] = {"total": 0, "n_delivered_at": 0, "n_read_at": 0}
    row.update({f"n_{s}": 0 for s in Status.values})
    row.update({f"{m}_{p}": None for m in ("ttd", "ttr") for p in PERCENTILES})
    return row


def delivery_stats(
    *, account: Account, query: DeliveryQuery, counts_only: bool = False
) -> dict[str, Any]:
    """Totals and groups of ``query`` for ``account`` (the shape of DESIGN §15).

    ``counts_only`` skips the percentiles and top errors (left null/empty): one query instead of
    three, for charts that only need the counts (the page's failure rate over time).
    """
    if query.group_by in ("day", "hour"):
        _check_buckets(query)
    messages = _messages(account, query)
    key_expression = _group_expression(query.group_by) if query.group_by else None
    keyed = messages if key_expression is None else messages.annotate(key=key_expression)
    key_values = [] if key_expression is None else ["key"]

    # Counts: one row per (group, status) — a hash aggregate, cheaper than a FILTER per status;
    # COUNT(*), not COUNT(id), so that message_outgoing_stats answers it by an index-only scan.
    totals_row = _zero_row()
    rows_by_key: dict[Any, dict[str, Any]] = defaultdict(_zero_row)
    count_rows = keyed.values(*key_values, "status").annotate(
        n=Count("*"), n_delivered_at=Count("delivered_at"), n_read_at=Count("read_at")
    )
    for row in count_rows:
        targets = [totals_row] if key_expression is None else [totals_row, rows_by_key[row["key"]]]
        for target in targets:
            target["total"] += row["n"]
            target[f"n_{row['status']}"] += row["n"]
            target["n_delivered_at"] += row["n_delivered_at"]
            target["n_read_at"] += row["n_read_at"]

    # Percentiles, over the delivered messages only (``read`` implies ``delivered_at``).
    durations: dict[Any, dict[str, list[float]]] = {}
    if connection.vendor == "postgresql" and not counts_only:
        delivered = messages.filter(delivered_at__isnull=False)
        totals_row.update(delivered.aggregate(**_percentiles()))
        if key_expression is not None:
            per_key = (
                delivered.annotate(key=key_expression).values("key").annotate(**_percentiles())
            )
            for row in per_key:
                rows_by_key[row.pop("key")].update(row)
    elif not counts_only:
        durations = _sorted_durations(messages, key_expression)

    failure_rows = (
        []
        if counts_only
        else list(
            keyed.filter(status__in=FAILED)
            .values(*key_values, "channel_type", "error_code", "status")
            .annotate(count=Count("*"), title=Max("error_title"))
        )
    )

    totals = _group(totals_row, durations.get(None, {}))
    totals["top_errors"] = _top_errors(failure_rows)
    groups = []
    for key, row in rows_by_key.items():
        if not row["total"]:
            continue
        group = {"key": _key(key), **_group(row, durations.get(key, {}))}
        group["top_errors"] = _top_errors(r for r in failure_rows if r["key"] == key)
        groups.append(group)
    groups = _arrange(groups, query)
    return {"since": query.since, "until": query.until, "totals": totals, "groups": groups}


def _check_buckets(query: DeliveryQuery) -> None:
    step = timedelta(days=1) if query.group_by == "day" else timedelta(hours=1)
    if (query.until - query.since) / step > MAX_BUCKETS:
        raise TooManyBuckets(
            f"group_by={query.group_by} over this period gives more than {MAX_BUCKETS} groups; "
            "choose a shorter period or group by day."
        )


def _sorted_durations(
    messages: QuerySet[Message], key_expression: Any
) -> dict[Any, dict[str, list[float]]]:
    """SQLite: every group's durations in ms, sorted by the database (one query per measure)."""
    found: dict[Any, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for measure, expression, field in (
        ("ttd", TIME_TO_DELIVER, "delivered_at"),
        ("ttr", TIME_TO_READ, "read_at"),
    ):
        rows = messages.filter(sent_at__isnull=False, **{f"{field}__isnull": False}).annotate(
            duration=expression
        )
        if key_expression is None:
            found[None][measure] = [
                d.total_seconds() * 1000
                for d in rows.order_by("duration").values_list("duration", flat=True)
            ]
            continue
        everyone = found[None][measure]  # rows come sorted, so this list is sorted too
        pairs = rows.annotate(key=key_expression).order_by("duration")
        for key, duration in pairs.values_list("key", "duration"):
            ms = duration.total_seconds() * 1000
            found[key][measure].append(ms)
            everyone.append(ms)
    return found


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks: exactly PostgreSQL's ``percentile_cont``."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _ms(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() * 1000, 3)


def _rate(count: int, total: int) -> float | None:
    return None if total == 0 else count / total


def _group(row: dict[str, Any], durations: dict[str, list[float]]) -> dict[str, Any]:
    total = row["total"] or 0
    by_status = {status.upper(): row[f"n_{status}"] or 0 for status in Status.values}
    failed = by_status["FAILED"] + by_status["EXPIRED"]
    times: dict[str, dict[str, float | None]] = {}
    for measure, name in (("ttd", "time_to_deliver_ms"), ("ttr", "time_to_read_ms")):
        if connection.vendor == "postgresql":
            times[name] = {p: _ms(row[f"{measure}_{p}"]) for p in PERCENTILES}
        else:
            values = durations.get(measure, [])
            times[name] = {
                p: None if (v := percentile(values, f)) is None else round(v, 3)
                for p, f in PERCENTILES.items()
            }
    return {
        "total": total,
        "by_status": by_status,
        "delivered_rate": _rate(row["n_delivered_at"] or 0, total),
        "read_rate": _rate(row["n_read_at"] or 0, total),
        "failed_rate": _rate(failed, total),
        **times,
    }


def _top_errors(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (channel type, code), biggest first, with the catalogue's words."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        code = row["error_code"] or ("expired" if row["status"] == Status.EXPIRED else "")
        entry = merged.get((row["channel_type"], code))
        if entry is None:
            info = errors.error_info(row["channel_type"], code) if code else None
            info = info or errors.UNKNOWN_ERROR
            entry = merged[(row["channel_type"], code)] = {
                "code": code,
                "title": info.title if info is not errors.UNKNOWN_ERROR else "",
                "channel_type": row["channel_type"],
                "count": 0,
                "explanation": info.explanation,
                "hint": info.hint,
                "resend_helps": errors.resend_helps(row["channel_type"], code),
            }
            if not entry["title"]:
                entry["title"] = row["title"] or info.title
        entry["count"] += row["count"]
    ordered = sorted(merged.values(), key=lambda e: (-e["count"], e["channel_type"], e["code"]))
    return ordered[:TOP_ERRORS]


def _key(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return None if value is None else str(value)


def _arrange(groups: list[dict[str, Any]], query: DeliveryQuery) -> list[dict[str, Any]]:
    """Chronological with empty buckets filled for time groups, biggest first otherwise."""
    if query.group_by not in ("day", "hour"):
        return sorted(groups, key=lambda g: (-g["total"], g["key"] is None, g["key"] or ""))
    step = timedelta(days=1) if query.group_by == "day" else timedelta(hours=1)
    start = query.since.astimezone(UTC)
    start = start.replace(minute=0, second=0, microsecond=0)
    if query.group_by == "day":
        start = start.replace(hour=0)
    by_key = {g["key"]: g for g in groups}
    filled = []
    bucket = start
    while bucket < query.until:
        filled.append(by_key.get(bucket) or {"key": bucket, **_empty()})
        bucket += step
    return filled


def _empty() -> dict[str, Any]:
    return {**_group(_zero_row(), {}), "top_errors": []}


def failed_messages(
    *, account: Account, query: DeliveryQuery, channel_type: str, code: str, limit: int = 200
) -> QuerySet[Message]:
    """The failed/expired messages of one top error (``code`` "expired" also matches expired
    messages that carry no code), newest first, with their contact and conversation."""
    messages = _messages(account, query).filter(status__in=FAILED, channel_type=channel_type)
    if code == "expired":
        messages = messages.filter(Q(error_code="expired") | Q(error_code="", status="expired"))
    elif code:
        messages = messages.filter(error_code=code)
    else:
        messages = messages.filter(error_code="", status=Status.FAILED)
    return messages.select_related("conversation__contact", "inbox").order_by("-created_at")[:limit]
