"""Delivery analytics (DESIGN §15): counts, rates, time-to-deliver and top errors, in the database.

Outgoing messages created in ``[since, until)`` of one account, optionally narrowed to an inbox,
a channel family or a WhatsApp template name, optionally grouped. Whatever the number of
messages, one answer costs a fixed number of queries.

On PostgreSQL the whole UTC days of the period, then the whole hours around them, are read from
the rollup (``inbox/rollup.py``, kept by triggers on every write to a message) and only the
partial hours at its edges from the messages, so the cost grows with the number of days, hours
and groups, not of messages:

1. the counts per (group, status, channel type, error code) from ``DeliveryHour``, plus the same
   from the messages of the edge hours — the totals, rates and top errors all come from them;
2. the percentiles: while the period holds at most ``EXACT_PERCENTILES_UP_TO`` delivered
   messages, exactly (``percentile_cont`` of ``delivered_at - sent_at`` and ``read_at -
   sent_at`` over the delivered messages, for the totals and once more per group); beyond, from
   the log-spaced histograms of ``DeliveryDuration`` plus the edge messages' bins, within 5 % of
   the exact value (``HISTOGRAM_RELATIVE_ERROR``).

On SQLite (embedded, small data) everything is read from the messages: the counts, and the two
duration columns sorted by the database, from which the same linear-interpolation percentiles
are computed in Python.
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
    BigIntegerField,
    Case,
    CharField,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Func,
    Max,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import NullIf

from inbox import rollup
from inbox.models import Account, DeliveryDuration, DeliveryHour, Inbox, Message
from statuses import errors
from statuses.catalogue import CHANNELS
from statuses.machine import Status

GROUP_BY = ("channel", "inbox", "template", "day", "hour")
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
TOP_ERRORS = 5
MAX_BUCKETS = 24 * 62  # hour buckets over two months, day buckets over four years
FAILED = (Status.FAILED, Status.EXPIRED)
# Exact percentiles up to this many delivered messages in the period (a sort of that many
# durations: ~40 ms here), histogram percentiles beyond.
EXACT_PERCENTILES_UP_TO = 50_000
HISTOGRAM_RELATIVE_ERROR = rollup.RATIO - 1
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
TOTALS: Any = object()  # the histograms' key for the totals (a group's key may be None)

TIME_TO_DELIVER = ExpressionWrapper(F("delivered_at") - F("sent_at"), output_field=DurationField())
TIME_TO_READ = ExpressionWrapper(F("read_at") - F("sent_at"), output_field=DurationField())


class UtcTrunc(Func):
    """``date_trunc(unit, column, 'UTC')``: a timestamptz, which psycopg returns aware — unlike
    ``TruncDay(tzinfo=UTC)``, whose per-row Python conversion cost ~0.1 ms a row (thousands of
    histogram rows per answer)."""

    output_field = DateTimeField()

    def __init__(self, unit: str, column: str) -> None:
        self.unit = unit
        super().__init__(F(column), template=f"date_trunc('{unit}', %(expressions)s, 'UTC')")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        """The embedded mode: Django's own SQLite truncation, in UTC (a text the
        DateTimeField converter reads back as an aware datetime)."""
        sql, params = compiler.compile(self.source_expressions[0])
        return connection.ops.datetime_trunc_sql(self.unit, sql, tuple(params), "UTC")


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
        "day": UtcTrunc("day", "created_at"),
        "hour": UtcTrunc("hour", "created_at"),
    }[group_by]


def _rollup_group_expression(group_by: str) -> Any:
    """The same groups over the rollup's columns (``bucket``: the creation hour or day)."""
    return {
        "channel": _family_of_channel_type(),
        "inbox": F("inbox_id"),
        "template": NullIf("template_name", Value(""), output_field=CharField()),
        "day": UtcTrunc("day", "bucket"),
        "hour": F("bucket"),
    }[group_by]


def _family_types(family: str) -> list[str]:
    return [c.channel_type for c in CHANNELS.values() if c.family == family]


def _messages(
    account: Account, query: DeliveryQuery, ranges: list[tuple[datetime, datetime]] | None = None
) -> QuerySet[Message]:
    """Outgoing messages of the query created in ``ranges`` (default: the whole period)."""
    within = Q()
    for start, end in ranges or [(query.since, query.until)]:
        within |= Q(created_at__gte=start, created_at__lt=end)
    messages = Message.objects.filter(within, account=account, direction=Message.Direction.OUTGOING)
    if query.inbox is not None:
        messages = messages.filter(inbox=query.inbox)
    if query.family:
        messages = messages.filter(channel_type__in=_family_types(query.family))
    if query.template:
        messages = messages.filter(template__name=query.template)
    return messages.order_by()


def _rollup(model: type, account: Account, query: DeliveryQuery, buckets: list) -> QuerySet:
    within = Q()
    for daily, start, end in buckets:
        within |= Q(daily=daily, bucket__gte=start, bucket__lt=end)
    rows = model.objects.filter(within, account_id=account.id)
    if query.inbox is not None:
        rows = rows.filter(inbox_id=query.inbox.id)
    if query.family:
        rows = rows.filter(channel_type__in=_family_types(query.family))
    if query.template:
        rows = rows.filter(template_name=query.template)
    return rows.order_by()


def _floor(at: datetime, step: timedelta) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if step == DAY else at


def _ceil(at: datetime, step: timedelta) -> datetime:
    floor = _floor(at, step)
    return floor if floor == at else floor + step


def _split(query: DeliveryQuery) -> tuple[list, list[tuple[datetime, datetime]]]:
    """Cover the period with rollup buckets — whole UTC days, then whole hours at both ends —
    and leave the partial hours at the edges to the messages. Returns ``[(daily, start, end)]``
    and ``[(start, end)]``. On SQLite, and with ``group_by=hour``, no days; on SQLite no rollup.
    """
    if connection.vendor != "postgresql":
        return [], [(query.since, query.until)]
    first, last = _ceil(query.since, HOUR), _floor(query.until, HOUR)
    if first >= last:
        return [], [(query.since, query.until)]
    edges = [(query.since, first), (last, query.until)]
    edges = [(start, end) for start, end in edges if start < end]
    first_day, last_day = _ceil(first, DAY), _floor(last, DAY)
    if query.group_by == "hour" or first_day >= last_day:
        return [(False, first, last)], edges
    hours = [(False, start, end) for start, end in ((first, first_day), (last_day, last))]
    return [(True, first_day, last_day)] + [h for h in hours if h[1] < h[2]], edges


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


def _count_rows(
    account: Account, query: DeliveryQuery, buckets: list, edges: list
) -> list[dict[str, Any]]:
    """Counts per (group, status, channel type, error code): rollup hours + edge messages."""
    keys = ["key"] if query.group_by else []
    found: list[dict[str, Any]] = []
    if buckets:
        rows = _rollup(DeliveryHour, account, query, buckets)
        if query.group_by:
            rows = rows.annotate(key=_rollup_group_expression(query.group_by))
        found += rows.values(*keys, "status", "channel_type", "error_code").annotate(
            n=Sum("n"),
            delivered=Sum("n_delivered_at"),
            read=Sum("n_read_at"),
            title=Max("error_title"),
        )
    if edges:
        # COUNT(*), not COUNT(id): no need for the heap where an index answers.
        messages = _messages(account, query, edges)
        if query.group_by:
            messages = messages.annotate(key=_group_expression(query.group_by))
        code = Case(When(status__in=FAILED, then=F("error_code")), default=Value(""))
        found += (
            messages.annotate(code=code)
            .values(*keys, "status", "channel_type", "code")
            .annotate(
                n=Count("*"),
                delivered=Count("delivered_at"),
                read=Count("read_at"),
                title=Max("error_title"),
            )
        )
    for row in found:
        row.setdefault("error_code", row.pop("code", ""))
        row["count"] = row["n"] = int(row["n"])
        row["delivered"], row["read"] = int(row["delivered"]), int(row["read"])
    return found


def _bin(later: str, earlier: str) -> RawSQL:
    table = Message._meta.db_table
    ms = rollup.milliseconds_sql(f'"{table}"."{later}"', f'"{table}"."{earlier}"')
    return RawSQL(rollup.bin_sql(ms), [], output_field=BigIntegerField())  # noqa: S611 - no input


def _histograms(
    account: Account, query: DeliveryQuery, buckets: list, edges: list
) -> dict[Any, dict[str, dict[int, int]]]:
    """Duration histograms per group (and ``TOTALS``): rollup + edge messages."""
    found: dict[Any, dict[str, dict[int, int]]] = defaultdict(
        lambda: {"ttd": defaultdict(int), "ttr": defaultdict(int)}
    )

    def add(key: Any, measure: str, bin_: int | None, n: int) -> None:
        if bin_ is None:
            return
        found[TOTALS][measure][bin_] += n
        if query.group_by:
            found[key][measure][bin_] += n

    keys = ["key"] if query.group_by else []
    if buckets:
        rows = _rollup(DeliveryDuration, account, query, buckets)
        if query.group_by:
            rows = rows.annotate(key=_rollup_group_expression(query.group_by))
        for row in rows.values(*keys, "measure", "bin").annotate(count=Sum("n")):
            measure = "ttr" if row["measure"] else "ttd"
            add(row.get("key"), measure, row["bin"], int(row["count"]))
    if edges:
        messages = _messages(account, query, edges).filter(delivered_at__isnull=False)
        if query.group_by:
            messages = messages.annotate(key=_group_expression(query.group_by))
        binned = messages.annotate(
            ttd_bin=_bin("delivered_at", "sent_at"), ttr_bin=_bin("read_at", "sent_at")
        )
        for row in binned.values(*keys, "ttd_bin", "ttr_bin").annotate(count=Count("*")):
            add(row.get("key"), "ttd", row["ttd_bin"], row["count"])
            add(row.get("key"), "ttr", row["ttr_bin"], row["count"])
    return found


def histogram_percentile(bins: dict[int, int], fraction: float) -> float | None:
    """``percentile_cont`` read from a histogram: the rank's bin, interpolated linearly inside
    it (the exact value lies in the same bin, so within ``HISTOGRAM_RELATIVE_ERROR``)."""
    total = sum(bins.values())
    if total <= 0:
        return None
    position = fraction * (total - 1)
    seen = 0
    for bin_ in sorted(bins):
        count = bins[bin_]
        if count <= 0:
            continue
        if position < seen + count:
            low, high = rollup.bin_bounds(bin_)
            return low + (high - low) * min(1.0, (position - seen + 0.5) / count)
        seen += count
    return rollup.bin_bounds(max(bins))[0]


def delivery_stats(
    *, account: Account, query: DeliveryQuery, counts_only: bool = False
) -> dict[str, Any]:
    """Totals and groups of ``query`` for ``account`` (the shape of DESIGN §15).

    ``counts_only`` skips the percentiles and top errors (left null/empty): fewer queries, for
    charts that only need the counts (the page's failure rate over time).
    """
    if query.group_by in ("day", "hour"):
        _check_buckets(query)
    buckets, edges = _split(query)
    grouped = query.group_by is not None

    totals_row = _zero_row()
    rows_by_key: dict[Any, dict[str, Any]] = defaultdict(_zero_row)
    count_rows = _count_rows(account, query, buckets, edges)
    for row in count_rows:
        targets = [totals_row, rows_by_key[row["key"]]] if grouped else [totals_row]
        for target in targets:
            target["total"] += row["n"]
            target[f"n_{row['status']}"] += row["n"]
            target["n_delivered_at"] += row["delivered"]
            target["n_read_at"] += row["read"]

    durations: dict[Any, dict[str, list[float]]] = {}
    if counts_only:
        pass
    elif connection.vendor != "postgresql":
        key_expression = _group_expression(query.group_by) if grouped else None
        durations = _sorted_durations(_messages(account, query), key_expression)
    elif totals_row["n_delivered_at"] <= EXACT_PERCENTILES_UP_TO:
        _exact_percentiles(account, query, totals_row, rows_by_key)
    else:
        for key, measures in _histograms(account, query, buckets, edges).items():
            target = totals_row if key is TOTALS else rows_by_key[key]
            for measure, bins in measures.items():
                for name, fraction in PERCENTILES.items():
                    value = histogram_percentile(bins, fraction)
                    target[f"{measure}_{name}"] = (
                        None if value is None else timedelta(milliseconds=value)
                    )

    failure_rows = [] if counts_only else [r for r in count_rows if r["status"] in FAILED]
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


def _exact_percentiles(
    account: Account,
    query: DeliveryQuery,
    totals_row: dict[str, Any],
    rows_by_key: dict[Any, dict[str, Any]],
) -> None:
    """``percentile_cont`` over the delivered messages of the period (PostgreSQL)."""
    delivered = _messages(account, query).filter(delivered_at__isnull=False)
    totals_row.update(delivered.aggregate(**_percentiles()))
    if query.group_by:
        keyed = delivered.annotate(key=_group_expression(query.group_by))
        for row in keyed.values("key").annotate(**_percentiles()):
            rows_by_key[row.pop("key")].update(row)


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
