"""Delivery analytics (DESIGN §15): counts, rates, time-to-deliver and top errors, in the database.

Outgoing messages created in ``[since, until)`` of one account, optionally narrowed to an inbox,
a channel family, a WhatsApp template name or a campaign, optionally grouped. Whatever the number
of messages, one answer costs a fixed number of queries.

On PostgreSQL the whole UTC days of the period, then the whole hours around them, are read from
the rollup (``inbox/rollup.py``, kept by triggers on every write to a message) and only the
partial hours at its edges from the messages, so the cost grows with the number of days, hours
and groups, not of messages. The statements are raw SQL (``inbox/analytics_sql.py``):

1. the counts per (group, status, and for failures channel type and error code) from
   ``DeliveryHour``, plus the same from the messages of the edge hours — the totals, rates and
   top errors all come from them;
2. the percentiles: while the period holds at most ``EXACT_PERCENTILES_UP_TO`` delivered
   messages, exactly (``percentile_cont`` of ``delivered_at - sent_at`` and ``read_at -
   sent_at`` over the delivered messages, for the totals and each group, in one pass); beyond,
   from the log-spaced histograms of ``DeliveryDuration`` plus the edge messages' bins, within
   5 % of the exact value (``HISTOGRAM_RELATIVE_ERROR``), the rank's bin found by the database.

A campaign has no rollup dimension: a campaign query reads its messages (at most 100,000, found
through the ``message_campaign_status`` index), with exact percentiles.

On SQLite (embedded, small data) everything is read from the messages through the ORM: the
counts, and the two duration columns sorted by the database, from which the same
linear-interpolation percentiles are computed in Python.
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
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform

from inbox import analytics_sql, rollup
from inbox.models import Account, Campaign, Inbox, Message
from statuses import errors
from statuses.catalogue import CHANNELS
from statuses.machine import Status

GROUP_BY = ("channel", "inbox", "template", "day", "hour")
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
TOP_ERRORS = 5
MAX_BUCKETS = 24 * 62  # hour buckets over two months, day buckets over four years
FAILED = (Status.FAILED, Status.EXPIRED)
STATUSES = tuple(Status.values)  # (Django rebuilds the list on every access)
# Exact percentiles up to this many delivered messages in the period (a sort of that many
# durations: ~40 ms here), histogram percentiles beyond.
EXACT_PERCENTILES_UP_TO = 50_000
HISTOGRAM_RELATIVE_ERROR = rollup.RATIO - 1
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

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


@dataclass(frozen=True)
class DeliveryQuery:
    since: datetime
    until: datetime
    inbox: Inbox | None = None
    family: str | None = None
    template: str | None = None
    campaign: Campaign | None = None
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


def _family_types(family: str) -> list[str]:
    return [c.channel_type for c in CHANNELS.values() if c.family == family]


def _messages(account: Account, query: DeliveryQuery) -> QuerySet[Message]:
    """Outgoing messages of the query (the ORM: SQLite, and the triage list)."""
    messages = Message.objects.filter(
        account=account,
        direction=Message.Direction.OUTGOING,
        created_at__gte=query.since,
        created_at__lt=query.until,
    )
    if query.inbox is not None:
        messages = messages.filter(inbox=query.inbox)
    if query.family:
        messages = messages.filter(channel_type__in=_family_types(query.family))
    if query.template:
        messages = messages.filter(template__name=query.template)
    if query.campaign is not None:
        messages = messages.filter(campaign=query.campaign)
    return messages.order_by()


def _floor(at: datetime, step: timedelta) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if step == DAY else at


def _ceil(at: datetime, step: timedelta) -> datetime:
    floor = _floor(at, step)
    return floor if floor == at else floor + step


def _split(query: DeliveryQuery) -> tuple[list, list[tuple[datetime, datetime]]]:
    """Cover the period with rollup buckets — whole UTC days, then whole hours at both ends —
    and leave the partial hours at the edges to the messages. Returns ``[(daily, start, end)]``
    and ``[(start, end)]``. On SQLite, and with ``group_by=hour``, no days; on SQLite and for a
    campaign (no rollup dimension) no rollup.
    """
    if connection.vendor != "postgresql" or query.campaign is not None:
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


def _zero_row() -> dict[str, Any]:
    row: dict[str, Any] = {"total": 0, "n_delivered_at": 0, "n_read_at": 0}
    row.update({f"n_{s}": 0 for s in STATUSES})
    row.update({f"{m}_{p}": None for m in ("ttd", "ttr") for p in PERCENTILES})
    return row


def _count_rows(account: Account, query: DeliveryQuery) -> list[dict[str, Any]]:
    """SQLite: counts per (group, status, channel type, error code) from the messages."""
    messages = _messages(account, query)
    keys = []
    if query.group_by:
        messages = messages.annotate(key=_group_expression(query.group_by))
        keys = ["key"]
    code = Case(When(status__in=FAILED, then=F("error_code")), default=Value(""))
    found = list(
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
        row["error_code"] = row.pop("code")
        row["count"] = row["n"]
        row.setdefault("key", None)
    return found


def _sql_filters(
    account: Account, query: DeliveryQuery, buckets: list, edges: list
) -> analytics_sql.Filters:
    return analytics_sql.Filters(
        account_id=account.id,
        period=(query.since, query.until),
        buckets=buckets or [],
        edges=edges or [],
        inbox_id=query.inbox.id if query.inbox is not None else None,
        channel_types=_family_types(query.family) if query.family else (),
        template=query.template or None,
        campaign_id=query.campaign.id if query.campaign is not None else None,
    )


def _exact_up_to(query: DeliveryQuery) -> float:
    """How many delivered messages still get exact percentiles (a campaign's always do)."""
    return math.inf if query.campaign is not None else EXACT_PERCENTILES_UP_TO


def delivery_stats(
    *, account: Account, query: DeliveryQuery, counts_only: bool = False
) -> dict[str, Any]:
    """Totals and groups of ``query`` for ``account`` (the shape of DESIGN §15).

    ``counts_only`` skips the percentiles and top errors (left null/empty): fewer queries, for
    charts that only need the counts (the page's failure rate over time).
    """
    if query.group_by in ("day", "hour"):
        _check_buckets(query)
    grouped = query.group_by is not None
    postgres = connection.vendor == "postgresql"
    filters = None
    if postgres:
        buckets, edges = _split(query)
        filters = _sql_filters(account, query, buckets, edges)
        count_rows = analytics_sql.count_rows(filters, query.group_by)
    else:
        count_rows = _count_rows(account, query)

    totals_row = _zero_row()
    rows_by_key: dict[Any, dict[str, Any]] = defaultdict(_zero_row)
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
    elif filters is None:
        key_expression = _group_expression(query.group_by) if grouped else None
        durations = _sorted_durations(_messages(account, query), key_expression)
    elif not totals_row["n_delivered_at"]:
        pass  # nothing delivered: no percentile to find
    elif totals_row["n_delivered_at"] <= _exact_up_to(query):
        for is_totals, key, values in analytics_sql.exact_percentiles(
            filters, query.group_by, PERCENTILES
        ):
            (totals_row if is_totals else rows_by_key[key]).update(values)
    else:
        for is_totals, key, measure, name, value in analytics_sql.histogram_percentiles(
            filters, query.group_by, PERCENTILES
        ):
            target = totals_row if is_totals else rows_by_key[key]
            target[f"{measure}_{name}"] = timedelta(milliseconds=value)

    failures_by_key: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    if not counts_only:
        for row in count_rows:
            if row["status"] in FAILED:
                failures_by_key[row["key"]].append(row)
    totals = _group(totals_row, durations.get(None, {}))
    totals["top_errors"] = _top_errors(r for rows in failures_by_key.values() for r in rows)
    groups = []
    for key, row in rows_by_key.items():
        if not row["total"]:
            continue
        group = {"key": _key(key), **_group(row, durations.get(key, {}))}
        group["top_errors"] = _top_errors(failures_by_key.get(key, ()))
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
    by_status = {status.upper(): row[f"n_{status}"] or 0 for status in STATUSES}
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
