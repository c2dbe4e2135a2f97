"""The send lane's threads (statuses.lanes, DESIGN §10/§16): several threads per worker, each
with its own connection, claim tasks without ever taking the same one; the lane's heartbeat
waits for all of them; and a send costs fewer round trips than it did."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from inbox.models import Message
from statuses import lanes
from statuses.lanes import SEND_QUEUES, Heartbeat, Lanes, LaneWorker
from statuses.machine import Status
from statuses.models import SendTry, WorkerHeartbeat
from tests.e2e.conftest import wait_for
from tests.fakes.counting_whatsapp import CountingWhatsApp, whatsapp_inbox_for
from tests.fakes.queued_sends import queue_campaign_sends


@pytest.fixture
def provider():
    fake = CountingWhatsApp()
    yield fake
    fake.close()


@pytest.fixture
def wa_inbox(account, provider):
    return whatsapp_inbox_for(account, provider, max_send_rate=1000)


@pytest.mark.requires_postgres("four threads claim with FOR UPDATE SKIP LOCKED; SQLite runs one")
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_four_send_threads_sends_each_queued_message_exactly_once(wa_inbox, provider):
    ids = queue_campaign_sends(wa_inbox, 200)
    worker = Lanes(worker_id="w1", interval=0.05, sweep_interval=0, send_threads=4)
    assert len(worker.sends) == 4
    worker.start()
    try:
        wait_for(
            lambda: Message.objects.filter(id__in=ids, status=Status.SENT).count() == len(ids),
            timeout=120,
            message=lambda: f"all sent; {provider.count()} reached the provider",
        )
    finally:
        worker.stop()
        worker.join(timeout=10)
        # The lanes grew this process's connection pool to one connection per thread: start the
        # next tests with a fresh pool (a database outage staged later must not find it full
        # of dead connections).
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()
    assert not worker.alive()

    assert provider.count() == 200  # each once: none lost, none twice
    tries = SendTry.objects.filter(message_id__in=ids)
    per_message = Counter(tries.values_list("message_id", flat=True))
    assert len(per_message) == 200 and set(per_message.values()) == {1}
    assert set(tries.values_list("outcome", flat=True)) == {SendTry.Outcome.ACCEPTED}
    assert len(set(tries.values_list("worker", flat=True))) >= 2  # the threads shared them
    statuses = Counter(DBTaskResult.objects.values_list("status", flat=True))
    assert statuses == {"SUCCESSFUL": 200}
    assert WorkerHeartbeat.objects.filter(worker_id="w1", lane="send").count() == 1


def in_another_thread(fn) -> None:
    def run() -> None:
        try:
            fn()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.mark.django_db(transaction=True)  # the other thread writes too, on its own connection
def test_the_send_lane_beats_only_once_every_thread_came_round(settings):
    settings.WORKER_HEARTBEAT_EVERY = 0
    beat = Heartbeat("w1", "send", threads=2)
    row = WorkerHeartbeat.objects.filter(worker_id="w1", lane="send")

    in_another_thread(beat.beat)
    assert not row.exists()
    beat.beat()  # the second thread comes round: the lane is moving
    first = row.get().seen_at

    beat.beat()
    beat.beat()  # the same thread again, the other one stuck: no beat
    assert row.get().seen_at == first
    in_another_thread(beat.beat)  # it comes round at last: the lane beats
    assert row.get().seen_at > first


def test_the_number_of_send_threads_comes_from_the_setting_or_the_database(settings):
    settings.WORKER_SEND_THREADS = 3
    assert lanes.send_threads_default() == 3
    worker = Lanes(worker_id="w1", interval=0.05, sweep_interval=0)
    assert len(worker.sends) == 3 and worker.send is worker.sends[0]
    assert {lane.heartbeat for lane in worker.sends} == {worker.sends[0].heartbeat}
    assert worker.sends[0].heartbeat.threads == 3
    assert [t.name for t in worker.threads] == [
        "tickmark-send-1",
        "tickmark-send-2",
        "tickmark-send-3",
        "tickmark-webhooks",
    ]

    settings.WORKER_SEND_THREADS = 0
    expected = 4 if connection.vendor == "postgresql" else 1  # SQLite: one writer anyway
    assert lanes.send_threads_default() == expected
    assert len(Lanes(worker_id="w2", interval=0.05, sweep_interval=0, send_threads=2).sends) == 2


def test_the_connection_pool_grows_to_one_connection_per_thread(monkeypatch):
    resized = []
    pool = SimpleNamespace(min_size=1, max_size=4, resize=lambda lo, hi: resized.append((lo, hi)))
    monkeypatch.setattr(lanes, "connections", {"default": SimpleNamespace(pool=pool)})

    lanes._fit_pool(7)
    lanes._fit_pool(3)

    assert resized == [(1, 7)]


# --- round trips per send -------------------------------------------------------------------


@pytest.mark.requires_postgres("the claim is one PostgreSQL UPDATE … RETURNING")
@pytest.mark.django_db(transaction=True)
def test_claiming_a_task_is_one_statement(wa_inbox):
    queue_campaign_sends(wa_inbox, 2)
    lane = LaneWorker(lane="send", queue_names=SEND_QUEUES, interval=0.05, worker_id="t1")
    other = LaneWorker(lane="send", queue_names=SEND_QUEUES, interval=0.05, worker_id="t2")

    with CaptureQueriesContext(connection) as queries:
        first = lane.claim_next()
    second = other.claim_next()

    assert len(queries) == 1
    assert first.id != second.id
    for task, worker_id in ((first, "t1"), (second, "t2")):
        task.refresh_from_db()
        assert (task.status, task.worker_ids) == ("RUNNING", [worker_id])
        assert task.started_at is not None
    assert lane.claim_next() is None  # nothing ready any more


@pytest.mark.requires_postgres("counts PostgreSQL statements")
@pytest.mark.django_db(transaction=True)
def test_a_send_through_the_lane_costs_18_statements_and_4_commits(wa_inbox, provider):
    queue_campaign_sends(wa_inbox, 2)
    lane = LaneWorker(lane="send", queue_names=SEND_QUEUES, interval=0.05, worker_id="t1")
    lane.run_task(lane.claim_next())  # the first send creates the inbox's pace row

    with CaptureQueriesContext(connection) as queries:
        lane.run_task(lane.claim_next())

    sql = [q["sql"] for q in queries]
    # Before: 27 statements and 5 commits (four for the task's claim alone, a separate
    # transaction for the send rate, repeated reads of the tries, the contact and the inbox).
    # Now: the task's claim (1, autocommit); the message's claim with its rate turn (7: BEGIN,
    # message + inbox + contact, tries, insert, pace row read and write, COMMIT); the record
    # (9: its event and the message's new status are one statement since issue #12's seventh
    # round); the task's result (1, autocommit).
    assert len(sql) == 18, "\n".join(s[:120] for s in sql)
    assert sql.count("COMMIT") == 2
    assert provider.count() == 2
