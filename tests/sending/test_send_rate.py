"""The per-inbox send rate (statuses.sendrate, DESIGN §16): the pace rule, the shared bucket
row, the hand-back of a send whose turn is far, 429 slow-down, and interactive sends first."""

from __future__ import annotations

import heapq
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from inbox.models import Inbox, Message
from statuses import outbound, sending, sendrate, tasks
from statuses.campaigns import create, materialise
from statuses.campaigns.recipients import Recipient
from statuses.lanes import SEND_QUEUES, LaneWorker
from statuses.machine import Status
from statuses.models import SendRateBucket, SendTry
from statuses.sendrate import Pace, decide, slowed
from tests.fakes.counting_whatsapp import CountingWhatsApp, whatsapp_inbox_for
from tests.fakes.queued_sends import TEMPLATE, queue_campaign_sends

pytestmark = pytest.mark.django_db

# --- the pace rule (pure) ---------------------------------------------------------------------


def simulate(arrivals: list[tuple[float, bool]], rate: float, max_wait: float) -> list[float]:
    """Feed sends (arrival time, bulk) through ``decide``; a send handed back comes again at
    its wake-up time. Return the times the sends went."""
    pace, sent = Pace(), []
    queue = list(arrivals)
    heapq.heapify(queue)
    while queue:
        now, bulk = heapq.heappop(queue)
        pace, turn = decide(pace, rate=rate, now=now, bulk=bulk, max_wait=max_wait)
        if turn.granted:
            sent.append(now + turn.wait)
        else:
            heapq.heappush(queue, (now + turn.wait, bulk))
    return sorted(sent)


def most_in_one_second(times: list[float]) -> int:
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


@hsettings(max_examples=60, deadline=None)
@given(
    rate=st.sampled_from([1.0, 3.0, 20.0, 80.0]),
    arrivals=st.lists(
        st.tuples(st.floats(0, 4, allow_nan=False), st.booleans()), min_size=1, max_size=150
    ),
    max_wait=st.sampled_from([0.0, 0.05, 0.25]),
)
def test_no_one_second_window_holds_more_than_rate_plus_burst(rate, arrivals, max_wait):
    sent = simulate(arrivals, rate, max_wait)

    assert len(sent) == len(arrivals)  # every send goes in the end, none twice
    assert most_in_one_second(sent) <= rate + sendrate.burst_of(rate)


def test_a_backlog_goes_at_the_rate_not_faster_or_slower():
    sent = simulate([(0.0, True)] * 200, rate=50.0, max_wait=0.25)

    assert sent[-1] == pytest.approx(200 / 50.0, abs=0.1)


def test_campaign_sends_leave_a_reserve_that_an_interactive_send_takes_at_once():
    pace, now = Pace(), 100.0
    while True:  # a campaign takes every turn it can get
        new, turn = decide(pace, rate=80.0, now=now, bulk=True, max_wait=0.0)
        if not turn.granted:
            break
        pace = new
    assert sendrate.burst_of(80.0) == 8

    _, reply = decide(pace, rate=80.0, now=now, bulk=False, max_wait=0.0)
    _, campaign = decide(pace, rate=80.0, now=now, bulk=True, max_wait=0.0)

    assert reply.granted and reply.wait == 0.0
    assert not campaign.granted and campaign.wait > 0


def test_sends_handed_back_are_woken_one_interval_apart():
    pace = Pace(next_free=110.0)  # the next turn is 10 s away
    wakes = []
    for _ in range(3):
        pace, turn = decide(pace, rate=2.0, now=100.0, bulk=True, max_wait=0.25)
        assert not turn.granted
        wakes.append(turn.wait)

    assert wakes == pytest.approx([10.0, 10.5, 11.0])  # burst 1: the turn is next_free


def test_a_429_halves_the_rate_pauses_the_inbox_and_the_rate_climbs_back(settings):
    settings.SEND_RATE_RECOVERY = 10.0
    pace = slowed(Pace(), now=100.0, retry_after=2.0)

    assert (pace.factor, pace.blocked_until) == (0.5, 102.0)
    assert slowed(pace, now=100.5, retry_after=None).factor == 0.5  # one signal, one cut
    _, during = decide(pace, rate=10.0, now=100.0, bulk=False, max_wait=0.25)
    assert not during.granted and during.wait == pytest.approx(2.0)
    assert pace.factor_at(102.0) == 0.5
    assert pace.factor_at(104.5) == pytest.approx(0.75)
    assert pace.factor_at(107.0) == 1.0
    assert slowed(pace, now=101.5, retry_after=None).factor == 0.25


def test_default_rates_cover_every_channel_type():
    from statuses.catalogue import ChannelType

    assert set(sendrate.DEFAULT_RATES) == set(ChannelType.values)
    assert sendrate.DEFAULT_RATES[ChannelType.WHATSAPP_CLOUD] == 80.0


# --- the shared row -------------------------------------------------------------------------


@pytest.fixture
def provider():
    fake = CountingWhatsApp()
    yield fake
    fake.close()


@pytest.fixture
def wa_inbox(account, provider):
    return whatsapp_inbox_for(account, provider)


def test_every_acquire_reads_and_moves_the_one_row_of_the_inbox(wa_inbox, settings):
    settings.SEND_RATE_MAX_WAIT = 0.0
    wa_inbox.max_send_rate = 1.0

    first = sendrate.acquire(inbox=wa_inbox, bulk=False)
    second = sendrate.acquire(inbox=wa_inbox, bulk=False)

    assert first.granted and first.wait == 0.0
    assert not second.granted and 0.9 < second.wait <= 1.0
    row = SendRateBucket.objects.get(inbox=wa_inbox)
    assert row.next_free == pytest.approx(time.time() + 1.0, abs=0.5)  # the database's clock


def test_an_inbox_without_a_pace_costs_no_query(account, django_assert_num_queries):
    api_inbox = Inbox(account=account, name="API", channel_type="api")

    with django_assert_num_queries(0):
        assert sendrate.acquire(inbox=api_inbox, bulk=False).granted


def test_a_send_whose_turn_is_far_goes_back_to_the_queue_untried(wa_inbox, provider, settings):
    wa_inbox.max_send_rate = 0.5
    wa_inbox.save()
    first, second = queue_campaign_sends(wa_inbox, 2)

    assert sending.message_send(message_id=first, attempt=1, bulk=True) == "accepted"
    assert sending.message_send(message_id=second, attempt=1, bulk=True) == "deferred"

    assert provider.count() == 1
    assert Message.objects.get(id=second).status == Status.QUEUED
    assert not SendTry.objects.filter(message_id=second).exists()  # it never reached WhatsApp
    again = DBTaskResult.objects.filter(status="READY", run_after__year__lt=9999).get()
    assert again.args_kwargs == {"args": [second, 1], "kwargs": {"bulk": True}}
    assert again.priority == tasks.CAMPAIGN_PRIORITY
    soon = timezone.now() + timedelta(seconds=2)
    assert soon - timedelta(seconds=1) < again.run_after <= soon + timedelta(seconds=0.5)


def test_a_429_slows_the_whole_inbox_and_the_admin_shows_it(
    wa_inbox, provider, admin_client, caplog
):
    provider.busy_at(0, seconds=60, retry_after=30)
    (message_id,) = queue_campaign_sends(wa_inbox, 1)

    assert sending.message_send(message_id=message_id, attempt=1, bulk=True) == "retrying"

    rate, paused = sendrate.current_rate(wa_inbox)
    assert rate == 40.0 and 25 < paused <= 30
    assert "provider answered 429; rate 80 -> 40 msg/s, paused 30 s" in caplog.text
    retry = DBTaskResult.objects.filter(status="READY", run_after__year__lt=9999).get()
    assert retry.priority == tasks.CAMPAIGN_PRIORITY  # a campaign send stays one when retried
    page = admin_client.get(f"/admin/inbox/inbox/{wa_inbox.id}/change/").content.decode()
    assert "40 msg/s (slowed by the provider&#x27;s 429s; full rate 80 msg/s)" in page
    paused_shown = re.search(r"paused (\d+) s more \(Retry-After\)", page)
    assert paused_shown and 20 <= int(paused_shown[1]) <= 30


# --- interactive sends first ----------------------------------------------------------------


def test_an_agent_reply_behind_3000_campaign_sends_is_taken_next_and_goes_at_once(
    account, wa_inbox, provider, settings
):
    # One send per 10 s with a burst of 10 (so the test does not race the clock): campaign
    # sends may take 5 turns, the other 5 are the interactive reserve.
    wa_inbox.max_send_rate = 0.1
    wa_inbox.save()
    settings.SEND_RATE_BURST = 100
    queue_campaign_sends(wa_inbox, 3000)
    lane = LaneWorker(lane="send", queue_names=SEND_QUEUES, interval=0.05, worker_id="test")
    for _ in range(8):
        task = lane.claim_next()
        assert task.priority == tasks.CAMPAIGN_PRIORITY
        lane.run_task(task)
    assert provider.count() == 5  # and 3 handed back: the campaign has no turn left

    reply = outbound.message_create_outgoing(
        account=account, inbox=wa_inbox, to="+15550100000", template=TEMPLATE
    )[0]
    task = lane.claim_next()
    assert task.args_kwargs["args"] == [str(reply.id), 1]
    assert task.priority > tasks.CAMPAIGN_PRIORITY
    started = time.monotonic()
    lane.run_task(task)

    assert time.monotonic() - started < 0.5
    reply.refresh_from_db()
    assert reply.status == Status.SENT


def test_fairness_ranks_interactive_sends_above_campaigns_even_with_a_big_backlog(wa_inbox):
    queue_campaign_sends(wa_inbox, 300, priority=None)  # 300 queued messages in the account

    sql, params = sending.send_priority_sql(wa_inbox.account_id, uuid.uuid4())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        assert cursor.fetchone()[0] == tasks.CAMPAIGN_PRIORITY + 1


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.requires_postgres("reads PostgreSQL's plan of the fairness count")
def test_the_fairness_count_of_a_reply_reads_no_queued_campaign_message(account, wa_inbox):
    recipients = [Recipient(i, f"+1555{i:07d}") for i in range(300)]
    campaign, _ = create.campaign_create(
        account=account, inbox=wa_inbox, name="big", recipients=recipients, template=TEMPLATE
    )
    while materialise.batch_materialise(campaign.id) == "batch":
        pass
    assert Message.objects.filter(campaign=campaign, status=Status.QUEUED).count() == 300

    sql, params = sending.send_priority_sql(account.id, uuid.uuid4())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_message")
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is tiny here
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT {sql}", params)
        plan = cursor.fetchone()[0][0]["Plan"]
    scans = [n for n in plan_nodes(plan) if n.get("Relation Name") == "inbox_message"]
    # Before the partial index, the count walked message_outgoing_stats and dropped every
    # queued campaign message by filter: 100,000 of them cost each reply ~30-110 ms.
    assert [n.get("Index Name") for n in scans] == ["message_interactive_queued"]
    assert all(n.get("Rows Removed by Filter", 0) == 0 for n in scans)


def test_send_enqueue_many_takes_a_priority():
    tasks.send_enqueue_many([("a", 1)])
    tasks.send_enqueue_many([("b", 1)], priority=tasks.CAMPAIGN_PRIORITY)

    rows = {r.args_kwargs["args"][0]: r for r in DBTaskResult.objects.all()}
    assert (rows["a"].priority, rows["a"].args_kwargs["kwargs"]) == (0, {})
    assert rows["b"].priority == tasks.CAMPAIGN_PRIORITY
    assert rows["b"].args_kwargs["kwargs"] == {"bulk": True}
