"""The histogram percentiles found by the database (``inbox/analytics_sql.py``) against the
Python reading of the same histograms that they replaced (PostgreSQL).

The database sums the bins per group and measure, finds the bin holding each percentile's rank
with a running sum, and Python interpolates inside it: the answer must be the very number the
old loop over every bin gave — to the bit, for the totals and every group, whichever mix of
rollup days, rollup hours and edge messages the period is read from.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, timedelta

import pytest
from django.db import connection

from inbox import analytics, rollup
from statuses.catalogue import CHANNELS
from tests.api.test_analytics_rollup import T0, _mix

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the histograms are the PostgreSQL rollup's"
)


def reference_percentile(bins: dict[int, int], fraction: float) -> float | None:
    """The Python reading the SQL replaced (inbox/analytics.py before it): the rank's bin,
    interpolated linearly inside it."""
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


def _message_bins(account_id, since, until):
    """Each delivered message's group columns and bins, binned by the rollup's own SQL."""
    ttd = rollup.bin_sql(rollup.milliseconds_sql("delivered_at", "sent_at"))
    ttr = rollup.bin_sql(rollup.milliseconds_sql("read_at", "sent_at"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT channel_type, inbox_id, template ->> 'name', created_at, {ttd}, {ttr} "
            "FROM inbox_message WHERE account_id = %s AND direction = 'outgoing' "
            "AND created_at >= %s AND created_at < %s AND delivered_at IS NOT NULL",
            [account_id, since, until],
        )
        return cursor.fetchall()


def _key(group_by, channel_type, inbox_id, template, created_at):
    created_at = created_at.astimezone(UTC)
    return {
        "channel": CHANNELS[channel_type].family,
        "inbox": str(inbox_id),
        "template": template,
        "day": created_at.replace(hour=0, minute=0, second=0, microsecond=0),
        "hour": created_at.replace(minute=0, second=0, microsecond=0),
    }[group_by]


def _expected(rows, group_by):
    histograms = defaultdict(lambda: {"ttd": defaultdict(int), "ttr": defaultdict(int)})
    for channel_type, inbox_id, template, created_at, ttd, ttr in rows:
        keys = ["totals"]
        if group_by:
            keys.append(_key(group_by, channel_type, inbox_id, template, created_at))
        for key in keys:
            for measure, bin_ in (("ttd", ttd), ("ttr", ttr)):
                if bin_ is not None:
                    histograms[key][measure][bin_] += 1
    expected = {}
    for key, measures in histograms.items():
        for measure, name in (("ttd", "time_to_deliver_ms"), ("ttr", "time_to_read_ms")):
            values = {}
            for p, fraction in analytics.PERCENTILES.items():
                value = reference_percentile(measures[measure], fraction)
                values[p] = None if value is None else analytics._ms(timedelta(milliseconds=value))
            expected[(key, name)] = values
    return expected


PERIODS = [
    (T0, T0 + timedelta(days=3)),  # whole days and hours: the rollup only
    (T0 + timedelta(minutes=20), T0 + timedelta(hours=5, minutes=40)),  # hours + edge messages
    (T0 + timedelta(hours=3, minutes=7), T0 + timedelta(days=2, hours=9, minutes=50)),  # all three
]


@pytest.mark.parametrize("period", range(len(PERIODS)))
@pytest.mark.parametrize("group_by", [None, "channel", "inbox", "template", "day", "hour"])
def test_sql_histogram_percentiles_equal_the_python_reading(
    inbox, sms_inbox, make_message, monkeypatch, period, group_by
):
    since, until = PERIODS[period]
    _mix(make_message, [inbox, sms_inbox], 240, random.Random(period), hours=3 * 24)
    monkeypatch.setattr(analytics, "EXACT_PERCENTILES_UP_TO", 0)
    query = analytics.DeliveryQuery(since=since, until=until, group_by=group_by)
    stats = analytics.delivery_stats(account=inbox.account, query=query)
    expected = _expected(_message_bins(inbox.account_id, since, until), group_by)
    assert stats["totals"]["time_to_deliver_ms"]["p50"] is not None
    for name in ("time_to_deliver_ms", "time_to_read_ms"):
        assert stats["totals"][name] == expected[("totals", name)], name
        for group in stats["groups"]:
            key = group["key"]
            want = expected.get((key, name), {"p50": None, "p90": None, "p99": None})
            assert group[name] == want, (key, name)


def test_grouped_exact_percentiles_match_one_query_per_group(inbox, sms_inbox, make_message):
    """``GROUPING SETS`` gives each group the percentiles of its own messages, and the totals
    those of all: the same as asking for each group alone."""
    _mix(make_message, [inbox, sms_inbox], 120, random.Random(5), hours=30)
    since, until = T0, T0 + timedelta(days=2)
    grouped = analytics.delivery_stats(
        account=inbox.account,
        query=analytics.DeliveryQuery(since=since, until=until, group_by="inbox"),
    )
    alone = analytics.delivery_stats(
        account=inbox.account, query=analytics.DeliveryQuery(since=since, until=until)
    )
    assert grouped["totals"] == alone["totals"]
    for box in (inbox, sms_inbox):
        one = analytics.delivery_stats(
            account=inbox.account,
            query=analytics.DeliveryQuery(since=since, until=until, inbox=box),
        )["totals"]
        group = next(g for g in grouped["groups"] if g["key"] == str(box.id))
        assert group["time_to_deliver_ms"] == one["time_to_deliver_ms"]
        assert group["time_to_read_ms"] == one["time_to_read_ms"]
        assert group["total"] == one["total"]
