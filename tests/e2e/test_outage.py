"""Stop the database for real while a real `manage.py worker` is sending (issue #10 item 2).

The database is made unreachable from a separate superuser connection (``ALLOW_CONNECTIONS
false`` + ``pg_terminate_backend`` of every backend of the test database), kept down for ~6 s
and restored. The worker must still be running afterwards, every queued message must reach the
fake provider exactly once (nothing lost, nothing doubled) and end ``sent``, and messages queued
after the outage must go out too.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django_tasks_db.models import DBTaskResult

from inbox.models import Message
from statuses import correlation, outbound
from statuses.machine import Status
from statuses.models import WorkerHeartbeat
from tests.e2e.conftest import wait_for
from tests.fakes.counting_whatsapp import whatsapp_inbox_for
from tests.fakes.whatsapp_send import FakeWhatsApp
from tests.outage import database_down

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE = 16
AFTER = 4
OUTAGE_SECONDS = 6


def queue(account, inbox, first: int, count: int) -> list[Message]:
    template = {"name": "order_update", "language": "en_US"}
    return [
        outbound.message_create_outgoing(
            account=account, inbox=inbox, to=f"+1555000{i:04d}", template=template
        )[0]
        for i in range(first, first + count)
    ]


@pytest.mark.parametrize(
    "pool",
    [
        pytest.param({"DB_POOL": "0", "WORKER_SEND_THREADS": "1"}, id="direct-connections"),
        # A pool timeout shorter than the outage: checkouts fail during it, as they would in
        # a longer outage with the default timeout. Four send threads (the default on
        # PostgreSQL), each with its own connection.
        pytest.param(
            {"DB_POOL": "1", "DB_POOL_TIMEOUT": "2", "WORKER_SEND_THREADS": "4"},
            id="pooled-4-send-threads",
        ),
    ],
)
def test_worker_outlives_a_database_outage_and_sends_each_message_exactly_once(
    account, make_stack, pool
):
    threads = int(pool["WORKER_SEND_THREADS"])
    # The provider answers slower as the threads grow: the worker sends at the same pace
    # (~4 msg/s), so the outage still comes in the middle of the sends.
    fake = FakeWhatsApp(delay=0.25 * threads)
    inbox = whatsapp_inbox_for(account, fake)
    stack = make_stack()
    worker = stack.start_worker(SWEEP_INTERVAL="0.5", WORKER_DB_RETRY_MAX="2", **pool)
    heartbeats = WorkerHeartbeat.objects.filter(lane__in=["send", "webhooks"])
    wait_for(lambda: heartbeats.count() == 2, timeout=30, message="the lanes to start")

    # 1. The database goes away while the worker is idle, polling for tasks.
    with database_down():
        time.sleep(OUTAGE_SECONDS)
        assert worker.poll() is None, stack_log(worker)
    assert "lane send: database unavailable" in worker.log.read_text(), stack_log(worker)

    # 2. … and again in the middle of a run of sends.
    messages = queue(account, inbox, 1, BEFORE)
    wait_for(lambda: fake.count() >= 3, timeout=60, message="the first sends")
    with database_down() as terminated:
        assert terminated >= 1  # the worker's connections were cut
        sent_at_outage = fake.count()
        time.sleep(OUTAGE_SECONDS)
        # Without a database nothing new can be claimed: at most the sends in flight (one per
        # send thread) finished.
        assert fake.count() <= sent_at_outage + threads
        assert worker.poll() is None, stack_log(worker)

    assert fake.count() < BEFORE, "the outage came too late to interrupt the sends"
    # 3. Messages queued after the outage go out too.
    messages += queue(account, inbox, BEFORE + 1, AFTER)
    wait_for(
        lambda: Message.objects.filter(status=Status.SENT).count() == BEFORE + AFTER,
        timeout=90,
        message=lambda: (
            f"every message sent: {Counter(Message.objects.values_list('status', flat=True))} {stack_log(worker)}"
        ),
    )

    assert worker.poll() is None, stack_log(worker)  # still running
    log = worker.log.read_text()
    assert "database unavailable" in log  # the worker did meet the outage
    assert "Traceback" not in log, log[-3000:]
    per_message = fake.per_message()
    assert set(per_message) == {correlation.make(m.id, 1) for m in messages}
    assert set(per_message.values()) == {1}  # exactly once each
    assert not DBTaskResult.objects.filter(status="FAILED").exists()
    fake.httpd.shutdown()


def stack_log(process) -> str:
    return process.log.read_text()[-3000:]
