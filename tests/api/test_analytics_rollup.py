"""The delivery rollup (inbox/rollup.py) against the messages it summarises (PostgreSQL).

1. Whatever mix of writes reaches the messages — creations, provider webhooks out of order and
   duplicated, expiry sweeps, resends, deletions, rows moved between hours or directions — the
   rollup kept by the triggers equals a recount from the messages.
2. Periods whose bounds fall inside an hour (rollup for the whole hours, messages for the edges)
   give the same answer as reading every message.
3. Beyond ``EXACT_PERCENTILES_UP_TO`` delivered messages, percentiles come from the histograms,
   within the documented 5 % of the exact ``percentile_cont``.
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from inbox import analytics, rollup
from inbox.exceptions import NotResendable, ResendWillNotHelp
from inbox.models import Message
from statuses import services, sweeps
from statuses.outbound import message_resend
from statuses.providers.base import StatusUpdate

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the rollup is kept by PostgreSQL triggers"
)

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
URL = "/api/v1/analytics/delivery"
KEY = "account_id, daily, bucket, inbox_id, channel_type, template_name"


def snapshot() -> tuple[set, set]:
    """The rollup's non-zero sums, shards merged."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {KEY}, status, error_code, sum(n), sum(n_delivered_at), sum(n_read_at) "
            f"FROM inbox_deliveryhour GROUP BY {KEY}, status, error_code "
            "HAVING sum(n) <> 0 OR sum(n_delivered_at) <> 0 OR sum(n_read_at) <> 0"
        )
        hours = set(cursor.fetchall())
        cursor.execute(
            f"SELECT {KEY}, measure, bin, sum(n) FROM inbox_deliveryduration "
            f"GROUP BY {KEY}, measure, bin HAVING sum(n) <> 0"
        )
        durations = set(cursor.fetchall())
    return hours, durations


def recount() -> tuple[set, set]:
    rollup.rebuild(connection)
    return snapshot()


def _webhook(provider_id: str, status: str, at: datetime, key: str, code: str) -> StatusUpdate:
    return StatusUpdate(
        provider_message_id=provider_id,
        status=status,
        raw_status=status,
        occurred_at=at,
        dedupe_key=key,
        error_code=code,
        error_title="Failed" if code else "",
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_equals_a_recount_after_a_random_mix(seed, inbox, sms_inbox, make_message):
    rng = random.Random(seed)
    inboxes = [inbox, sms_inbox]
    messages: list[Message] = []
    created = iter(range(10**6))
    keys: list[tuple] = []  # (inbox, provider id, status, at, dedupe key, code)

    def create() -> None:
        box = rng.choice(inboxes)
        number = next(created)
        at = T0 + timedelta(minutes=rng.randrange(0, 6 * 60))
        sent = rng.random() < 0.8
        messages.append(
            make_message(
                box,
                to=f"+1650555{number:04d}",
                provider_message_id=f"pm-{seed}-{number}",
                status="sent" if sent else "queued",
                created_at=at,
                queued_at=at,
                sent_at=at + timedelta(milliseconds=rng.randrange(1, 3000)) if sent else None,
                template={"name": rng.choice(["promo", "otp"])} if rng.random() < 0.3 else None,
            )
        )

    def webhook() -> None:
        by_inbox: dict = {}
        for _ in range(rng.randint(1, 4)):
            if keys and rng.random() < 0.25:
                entry = rng.choice(keys)  # a duplicate delivery (maybe of a deleted message)
            else:
                message = rng.choice(messages)
                status = rng.choice(["delivered", "delivered", "read", "failed", "sent"])
                # Out of order: any time after creation, read before delivered as often as not.
                at = message.created_at + timedelta(milliseconds=rng.randrange(5, 7_200_000))
                code = rng.choice(["131047", "131026"]) if status == "failed" else ""
                # The provider id of the attempt it was sent as (a resend makes it stale).
                current = Message.objects.get(pk=message.pk)
                pid = current.provider_message_id
                if not pid:  # resent: the new attempt gets its id from the provider
                    pid = f"pm-{current.pk.hex[:16]}-{current.attempt}"
                    Message.objects.filter(pk=current.pk).update(provider_message_id=pid)
                entry = (message.inbox, pid, status, at, f"{pid}-{len(keys)}", code)
                keys.append(entry)
            box = entry[0]
            by_inbox.setdefault(box.id, (box, []))[1].append(_webhook(*entry[1:]))
        for box, updates in by_inbox.values():
            services.status_updates_apply(inbox=box, updates=updates)

    def resend() -> None:
        for message in rng.sample(messages, len(messages)):
            message.refresh_from_db()
            try:
                message_resend(message=message)
                return
            except (NotResendable, ResendWillNotHelp):
                continue

    def delete() -> None:
        message = messages.pop(rng.randrange(len(messages)))
        Message.objects.filter(pk=message.pk).delete()

    def move() -> None:
        message = rng.choice(messages)
        if rng.random() < 0.5:
            Message.objects.filter(pk=message.pk).update(created_at=T0 + timedelta(hours=9))
        else:
            Message.objects.filter(pk=message.pk).update(direction=Message.Direction.INCOMING)

    for _ in range(12):
        create()
    actions = [create, webhook, webhook, webhook, resend, delete, move]
    for _ in range(60):
        rng.choice(actions)()
        if not messages:
            create()
    # Expire what never got a delivery report, later (a bulk UPDATE through the service).
    for i in range(2):
        make_message(
            inbox,
            to=f"+1650555999{i}",
            provider_message_id=f"last-{i}",
            status="sent",
            created_at=T0,
            queued_at=T0,
            sent_at=T0,
        )
    # Merged state comes from the events: sent_at from a "sent" one (here after "delivered").
    delivered = _webhook("last-1", "delivered", T0 + timedelta(seconds=3), "last-1-d", "")
    sent = _webhook("last-1", "sent", T0 + timedelta(seconds=1), "last-1-s", "")
    services.status_updates_apply(inbox=inbox, updates=[delivered, sent])
    expired = sweeps.messages_expire(now=T0 + timedelta(days=60))

    call_command("rebuild_delivery_rollup", "--check")  # fails if a recount differs
    kept = snapshot()
    assert kept == recount()
    statuses = {row[6] for row in kept[0]}
    assert expired and "expired" in statuses and statuses & {"delivered", "read"}
    assert kept[1], "no duration was recorded"


def test_bulk_writes_and_deletes_move_the_rollup(inbox, make_message):
    """One statement over many rows is one set-based update of the rollup, both ways."""
    for i in range(30):
        make_message(inbox, to=f"+1650666{i:04d}", status="sent", created_at=T0, sent_at=T0)
    Message.objects.filter(inbox=inbox).update(
        status="delivered", delivered_at=T0 + timedelta(seconds=2)
    )
    hours, durations = snapshot()
    assert {(row[1], row[6], row[8], row[9]) for row in hours} == {
        (False, "delivered", 30, 30),  # its hour
        (True, "delivered", 30, 30),  # its day
    }
    assert sum(row[-1] for row in durations if not row[1]) == 30
    Message.objects.filter(inbox=inbox).delete()
    assert snapshot() == (set(), set())


def _mix(make_message, inboxes, count, rng, hours=5):
    for i in range(count):
        box = inboxes[i % len(inboxes)]
        created = T0 + timedelta(seconds=rng.randrange(0, hours * 3600))
        sent = created + timedelta(seconds=1)
        status = rng.choice(["read", "delivered", "sent", "failed", "queued"])
        fields = {"status": status, "created_at": created, "sent_at": sent}
        if status in ("read", "delivered"):
            fields["delivered_at"] = sent + timedelta(milliseconds=rng.lognormvariate(7, 1.5))
        if status == "read":
            fields["read_at"] = fields["delivered_at"] + timedelta(seconds=rng.randrange(1, 900))
        if status == "failed":
            fields["error_code"] = rng.choice(["131047", "131026"])
        if status == "queued":
            fields["sent_at"] = None
        make_message(box, to=f"+1650777{i:04d}", **fields)


def _from_messages_only(monkeypatch):
    """The same answers read from every message (what the rollup must reproduce)."""
    monkeypatch.setattr(analytics, "_split", lambda q: (None, [(q.since, q.until)]))


@pytest.mark.parametrize(
    ("period", "group_by"),
    [
        ("since=2026-03-02T08:20:00Z&until=2026-03-02T12:40:00Z", group_by)
        for group_by in ["", "channel", "inbox", "hour", "template"]
    ]
    + [  # whole days in the middle: days, then hours, then edge messages
        ("since=2026-03-02T09:20:00Z&until=2026-03-05T04:40:00Z", group_by)
        for group_by in ["", "day", "channel", "hour"]
    ],
)
def test_edges_inside_an_hour_match_reading_every_message(
    client, inbox, sms_inbox, make_message, monkeypatch, period, group_by
):
    _mix(make_message, [inbox, sms_inbox], 120, random.Random(7), hours=4 * 24)
    url = f"{URL}?{period}&group_by={group_by}"
    from_rollup = client.get(url)
    assert from_rollup.status_code == 200
    body = from_rollup.json()
    assert 0 < body["totals"]["total"] < 120  # the edges cut some messages out
    _from_messages_only(monkeypatch)
    assert body == client.get(url).json()


def test_histogram_percentiles_within_five_percent(
    client, inbox, sms_inbox, make_message, monkeypatch
):
    rng = random.Random(11)
    _mix(make_message, [inbox, sms_inbox], 300, rng)
    monkeypatch.setattr(analytics, "EXACT_PERCENTILES_UP_TO", 0)
    url = f"{URL}?since=2026-03-02T08:30:00Z&until=2026-03-02T13:00:00Z&group_by=channel"
    body = client.get(url).json()
    delivered = Message.objects.filter(
        delivered_at__isnull=False,
        created_at__gte=datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        created_at__lt=datetime(2026, 3, 2, 13, tzinfo=UTC),
    )
    ttd = sorted((m.delivered_at - m.sent_at).total_seconds() * 1000 for m in delivered)
    ttr = sorted((m.read_at - m.sent_at).total_seconds() * 1000 for m in delivered if m.read_at)
    assert len(ttd) > 50 and len(ttr) > 20
    for values, answer in (
        (ttd, body["totals"]["time_to_deliver_ms"]),
        (ttr, body["totals"]["time_to_read_ms"]),
    ):
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        for name, fraction in analytics.PERCENTILES.items():
            exact = cuts[round(fraction * 100) - 1]
            # Between the two ranks percentile_cont interpolates, within the bin error.
            position = fraction * (len(values) - 1)
            low, high = values[int(position)], values[min(int(position) + 1, len(values) - 1)]
            error = analytics.HISTOGRAM_RELATIVE_ERROR
            assert low * (1 - error) <= answer[name] <= high * (1 + error), (name, exact)
    assert sum(g["total"] for g in body["groups"]) == body["totals"]["total"]
    assert all(g["time_to_deliver_ms"]["p50"] for g in body["groups"])


def test_check_command_finds_a_drifted_rollup(inbox, make_message):
    make_message(inbox, status="sent", created_at=T0, sent_at=T0)
    call_command("rebuild_delivery_rollup", "--check")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inbox_deliveryhour SET n = n + 1 WHERE NOT daily")
    with pytest.raises(CommandError, match="differed"):
        call_command("rebuild_delivery_rollup", "--check")
    call_command("rebuild_delivery_rollup")  # repairs it
    call_command("rebuild_delivery_rollup", "--check")


@pytest.mark.django_db
def test_bins_in_double_precision_are_the_exact_numeric_bins():
    """``bin_sql`` finds the bin in double precision (``ln`` of a numeric is slow) and takes the
    exact path only near a bin edge: every duration — random ones, and the microsecond values
    on and around each edge — must land in the bin the numeric formula gives, or the triggers
    would take a message out of a different bin than the one they put it in."""
    exact = (
        "CASE WHEN ms IS NULL THEN NULL WHEN ms < 1 THEN 0 "
        f"ELSE LEAST(floor(ln(ms) / ln({rollup.RATIO}))::int + 1, {rollup.LAST_BIN}) END"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH d AS ("
            "SELECT (floor(random() * 1e13) / 1e6)::numeric AS ms FROM generate_series(1, 20000) "
            "UNION ALL SELECT (round(power(%s::numeric, k) * 1000) + o) / 1000 "
            "FROM generate_series(0, %s) k, generate_series(-3, 3) o "
            "UNION ALL SELECT x FROM (VALUES (NULL::numeric), (-5), (0), (0.999999), (1)) v(x)) "
            f"SELECT count(*), count(*) FILTER (WHERE ({exact}) IS DISTINCT FROM "
            f"({rollup.bin_sql('ms')})) FROM d",
            [rollup.RATIO, rollup.LAST_BIN + 5],
        )
        total, different = cursor.fetchone()
    assert total > 20000 and different == 0


def _connect():
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_take_shards_nobody_else_is_writing(inbox, make_message):
    """Two transactions moving messages of one rollup row never wait for each other, whatever
    their backends' pids (a pid-picked shard was shared one time in four: the second status
    update then waited for the first transaction to commit)."""
    messages = [make_message(inbox, to=f"+1650507{i:04d}", status="sent") for i in range(2)]
    before = recount()
    writers = [_connect() for _ in range(rollup.SHARDS + 1)]
    try:
        shards = []
        for writer in writers[: rollup.SHARDS]:
            shards.append(writer.execute("SELECT inbox_message_rollup_shard()").fetchone()[0])
            # again within the same transaction: its own shard, not another one
            assert writer.execute("SELECT inbox_message_rollup_shard()").fetchone()[0] == shards[-1]
        assert sorted(shards) == list(range(rollup.SHARDS))  # each its own
        for writer in writers[: rollup.SHARDS]:
            writer.rollback()
        # The same through the trigger: each status update in its own open transaction, and
        # neither waits (lock_timeout would raise) although both change the same rollup row.
        for writer, message in zip(writers, messages, strict=False):
            writer.execute("SET lock_timeout = '2s'")
            writer.execute(
                "UPDATE inbox_message SET status = 'delivered', delivered_at = sent_at "
                "WHERE id = %s",
                [message.id],
            )
        for writer in writers[:2]:
            writer.commit()
    finally:
        for writer in writers:
            writer.close()
    after = snapshot()
    assert after == recount() and after != before
