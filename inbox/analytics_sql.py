"""Delivery analytics on PostgreSQL: the statements behind ``inbox.analytics``.

Raw SQL from text built once per shape of query (which filters, which grouping), every value a
bound parameter: at a million messages, compiling the same four ORM querysets per request cost
more than running them, and reading a histogram per group bin by bin into Python dicts (31 days
x 2 measures x ~200 bins for ``group_by=day``) cost more still. So each answer is two
statements, each returning few rows:

- ``count_rows``: the counts per (group, status, and for failures channel type and error code),
  rollup buckets and edge messages summed in one statement;
- ``histogram_percentiles``: the percentiles read from the histograms in the database — bins
  summed per (group, measure), a running sum over them, and for each percentile the one bin that
  holds its rank (a window function), so one row per group x measure x percentile; Python only
  interpolates inside that bin, with the arithmetic of the Python loop over every bin it replaced;
- or ``exact_percentiles``: ``percentile_cont`` over the messages, for the totals and every
  group in one pass (``GROUPING SETS``).

Groups are keyed the way the ORM version keyed them (a family name, an inbox id, a template
name, a UTC bucket), so the answers are the same to the bit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import connection

from inbox import rollup
from statuses.catalogue import CHANNELS

MESSAGES = "inbox_message"
FAILED = ("failed", "expired")


def _literal(value: str) -> str:
    """A constant of the code (a channel type, a family name) as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@cache
def _family_case(column: str) -> str:
    families: dict[str, list[str]] = defaultdict(list)
    for channel in CHANNELS.values():
        families[channel.family].append(channel.channel_type)
    whens = " ".join(
        f"WHEN {column} IN ({', '.join(_literal(t) for t in types)}) THEN {_literal(family)}"
        for family, types in families.items()
    )
    return f"CASE {whens} END"


def _utc_bin(unit: str, column: str) -> str:
    """The UTC day or hour of a timestamptz: ``date_trunc(unit, column, 'UTC')``, computed as
    plain arithmetic on the instant (``date_bin``) rather than through a time zone (a third
    cheaper per row). Days and hours since 0001-01-01 00:00 UTC are UTC days and hours."""
    return f"date_bin('1 {unit}', {column}, '0001-01-01 00:00:00+00')"


def _rollup_key(group_by: str | None) -> str:
    """A group's key over the rollup's columns (``bucket``: the creation hour or UTC day)."""
    if group_by is None:
        return "NULL::text"
    return {
        "channel": _family_case("channel_type"),
        "inbox": "inbox_id",
        "template": "NULLIF(template_name, '')",
        # A day row's bucket is its day already.
        "day": f"CASE WHEN daily THEN bucket ELSE {_utc_bin('day', 'bucket')} END",
        "hour": "bucket",
    }[group_by]


def _message_key(group_by: str | None) -> str:
    """The same key over a message's columns."""
    if group_by is None:
        return "NULL::text"
    return {
        "channel": _family_case("channel_type"),
        "inbox": "inbox_id",
        "template": "(template ->> 'name')",
        "day": _utc_bin("day", "created_at"),
        "hour": _utc_bin("hour", "created_at"),
    }[group_by]


class Filters:
    """The WHERE clauses (text and values) of one query: over the rollup's ``buckets``, over the
    messages of the ``edges``, and over the messages of the whole ``period`` (exact
    percentiles).

    ``channel_types``, ``template`` and ``campaign_id`` are optional narrowings; a campaign has
    no rollup dimension, so a campaign query has no ``buckets``."""

    def __init__(
        self,
        *,
        account_id: int,
        period: tuple[datetime, datetime],
        buckets: Sequence[tuple[bool, datetime, datetime]],
        edges: Sequence[tuple[datetime, datetime]],
        inbox_id: Any = None,
        channel_types: Sequence[str] = (),
        template: str | None = None,
        campaign_id: Any = None,
    ) -> None:
        self._account_id = account_id
        self._narrow: list[str] = []
        self._values: list[Any] = []
        if inbox_id is not None:
            self._narrow.append("inbox_id = %s")
            self._values.append(inbox_id)
        if channel_types:
            self._narrow.append(f"channel_type IN ({', '.join(['%s'] * len(channel_types))})")
            self._values.extend(channel_types)
        self._template = template
        self._campaign_id = campaign_id
        self.rollup, self.rollup_params = self._rollup(buckets) if buckets else ("", [])
        self.messages, self.message_params = self._messages(edges) if edges else ("", [])
        self.period, self.period_params = self._messages([period])

    def _rollup(self, buckets: Sequence[tuple[bool, datetime, datetime]]) -> tuple[str, list]:
        ranges = " OR ".join(["(daily = %s AND bucket >= %s AND bucket < %s)"] * len(buckets))
        clauses = ["account_id = %s", f"({ranges})", *self._narrow]
        params = [self._account_id, *(v for b in buckets for v in b), *self._values]
        if self._template:
            clauses.append("template_name = %s")
            params.append(self._template)
        return " AND ".join(clauses), params

    def _messages(self, ranges: Sequence[tuple[datetime, datetime]]) -> tuple[str, list]:
        within = " OR ".join(["(created_at >= %s AND created_at < %s)"] * len(ranges))
        # The literal direction matches the partial analytics indexes (message_outgoing_*).
        clauses = ["account_id = %s", "direction = 'outgoing'", f"({within})", *self._narrow]
        params = [self._account_id, *(v for r in ranges for v in r), *self._values]
        if self._template:
            clauses.append("(template ->> 'name') = %s")
            params.append(self._template)
        if self._campaign_id is not None:
            # Served by message_campaign_status (campaign_id, status) WHERE campaign_id IS NOT
            # NULL: a campaign's ≤ 100,000 messages, whatever the account holds.
            clauses.append("campaign_id = %s")
            params.append(self._campaign_id)
        return " AND ".join(clauses), params


def _run(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _union(parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    return " UNION ALL ".join(sql for sql, _ in parts), [v for _, p in parts for v in p]


def count_rows(filters: Filters, group_by: str | None) -> list[dict[str, Any]]:
    """The counts per (group, status, and for failures channel type and error code): one
    statement."""
    parts = []
    if filters.rollup:
        parts.append(
            (
                f"SELECT {_rollup_key(group_by)} AS key, status, channel_type, error_code, n, "
                "n_delivered_at AS delivered, n_read_at AS read, error_title AS title "
                f"FROM inbox_deliveryhour WHERE {filters.rollup}",
                filters.rollup_params,
            )
        )
    if filters.messages:
        # Grouped first by the raw columns, whose statistics let the planner see few groups
        # and hash them: over the key and CASE expressions it expected a group per message and
        # sorted them all (a campaign's 100,000 messages: twice the time).
        parts.append(
            (
                "SELECT key, status, channel_type, error_code, count(*) AS n, "
                "count(delivered_at) AS delivered, count(read_at) AS read, "
                f"max(error_title) AS title FROM (SELECT {_message_key(group_by)} AS key, "
                "status, channel_type, error_code, delivered_at, read_at, error_title "
                f"FROM {MESSAGES} WHERE {filters.messages}) AS m GROUP BY 1, 2, 3, 4",
                filters.message_params,
            )
        )
    if not parts:
        return []
    source, params = _union(parts)
    # The error code of a failure only (as the rollup keeps it); the channel type matters for
    # the top errors only, so other statuses are summed over it (a quarter of the rows to read
    # back for the 31 days of group_by=day).
    failed = f"status IN {FAILED}"
    sql = (
        f"SELECT key, status, CASE WHEN {failed} THEN channel_type ELSE '' END, "
        f"CASE WHEN {failed} THEN error_code ELSE '' END, sum(n)::bigint, "
        "sum(delivered)::bigint, sum(read)::bigint, max(title) "
        f"FROM ({source}) AS t GROUP BY 1, 2, 3, 4"
    )
    return [
        {
            "key": key,
            "status": status,
            "channel_type": channel_type,
            "error_code": code,
            "n": n,
            "count": n,
            "delivered": delivered,
            "read": read,
            "title": title,
        }
        for key, status, channel_type, code, n, delivered, read, title in _run(sql, params)
    ]


def histogram_percentiles(
    filters: Filters, group_by: str | None, percentiles: dict[str, float]
) -> list[tuple[bool, Any, str, str, float | None]]:
    """``(totals?, key, measure "ttd"/"ttr", percentile name, ms)`` read from the histograms
    (rollup bins plus the edge messages' bins): the rank's bin found in the database,
    interpolated linearly inside it here, exactly like the Python loop it replaced."""
    parts = []
    if filters.rollup:
        parts.append(
            (
                f"SELECT {_rollup_key(group_by)} AS key, measure, bin, n "
                f"FROM inbox_deliveryduration WHERE {filters.rollup}",
                filters.rollup_params,
            )
        )
    if filters.messages:
        deliver = rollup.milliseconds_sql("delivered_at", "sent_at")
        read = rollup.milliseconds_sql("read_at", "sent_at")
        parts.append(
            (
                f"SELECT {_message_key(group_by)} AS key, m.measure, "
                f"{rollup.bin_sql('m.ms')} AS bin, 1 AS n "
                f"FROM {MESSAGES} CROSS JOIN LATERAL (VALUES (0, {deliver}), (1, {read})) "
                f"AS m(measure, ms) WHERE {filters.messages} AND delivered_at IS NOT NULL "
                "AND m.ms IS NOT NULL",
                filters.message_params,
            )
        )
    if not parts:
        return []
    source, params = _union(parts)
    if group_by is None:
        grouping = "true AS totals, NULL::text AS key"
        sets = "measure, bin"
    else:
        grouping = "grouping(key) = 1 AS totals, key"
        sets = "GROUPING SETS ((key, measure, bin), (measure, bin))"
    fractions = ", ".join(
        f"({_literal(name)}, {float(f)!r}::float8)" for name, f in percentiles.items()
    )
    # total: every bin of the (group, measure), like sum(bins.values()); the running sum counts
    # the bins holding messages only, like the Python loop did (both windows share one sort).
    # A percentile's rank f x (total - 1) lies in the bin whose running sum first exceeds it.
    sql = (
        f"WITH h AS (SELECT {grouping}, measure, bin, sum(n)::bigint AS n FROM ({source}) AS u "
        f"WHERE bin IS NOT NULL GROUP BY {sets}), "
        "c AS (SELECT *, (sum(n) OVER w)::bigint AS total, (sum(CASE WHEN n > 0 THEN n ELSE 0 "
        "END) OVER (w ORDER BY bin ROWS UNBOUNDED PRECEDING))::bigint AS seen_to "
        "FROM h WINDOW w AS (PARTITION BY totals, key, measure)) "
        "SELECT c.totals, c.key, c.measure, p.name, c.bin, c.n, c.seen_to - c.n, c.total "
        f"FROM c JOIN (VALUES {fractions}) AS p(name, f) "
        "ON p.f * (c.total - 1) >= c.seen_to - c.n AND p.f * (c.total - 1) < c.seen_to "
        "WHERE c.n > 0 AND c.total > 0"
    )
    found = []
    for totals, key, measure, name, bin_, count, seen, total in _run(sql, params):
        position = percentiles[name] * (total - 1)
        low, high = rollup.bin_bounds(bin_)
        value = low + (high - low) * min(1.0, (position - seen + 0.5) / count)
        found.append((totals, key, "ttr" if measure else "ttd", name, value))
    return found


def exact_percentiles(
    filters: Filters, group_by: str | None, percentiles: dict[str, float]
) -> list[tuple[bool, Any, dict[str, timedelta | None]]]:
    """``(totals?, key, {"ttd_p50": …})``: ``percentile_cont`` over the delivered messages of
    the whole period, for the totals and each group in one pass (one sort per group and
    measure)."""
    fractions = "ARRAY[" + ", ".join(f"{float(f)!r}" for f in percentiles.values()) + "]::float8[]"
    if group_by is None:
        grouping, sets = "true, NULL", ""
    else:
        grouping, sets = "grouping(key) = 1, key", " GROUP BY GROUPING SETS ((key), ())"
    sql = (
        f"SELECT {grouping}, percentile_cont({fractions}) WITHIN GROUP (ORDER BY ttd), "
        f"percentile_cont({fractions}) WITHIN GROUP (ORDER BY ttr) "
        f"FROM (SELECT {_message_key(group_by)} AS key, delivered_at - sent_at AS ttd, "
        f"read_at - sent_at AS ttr FROM {MESSAGES} WHERE {filters.period} "
        f"AND delivered_at IS NOT NULL) AS s{sets}"
    )
    found = []
    for totals, key, ttd, ttr in _run(sql, filters.period_params):
        values: dict[str, timedelta | None] = {}
        for measure, found_values in (("ttd", ttd), ("ttr", ttr)):
            for i, name in enumerate(percentiles):
                values[f"{measure}_{name}"] = found_values[i] if found_values else None
        found.append((totals, key, values))
    return found
