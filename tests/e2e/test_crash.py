"""Kill a real worker (SIGKILL) in the middle of a batch: after a restart every message was
sent exactly once — the one in flight at the kill becomes ``unknown``, never a blind resend —
and none is left queued."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from inbox.models import Message
from statuses import correlation, outbound
from statuses.machine import Status
from statuses.models import SendTry
from tests.e2e.conftest import wait_for
from tests.fakes.whatsapp_send import FakeWhatsApp

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = 12
KILL_AT = 5


def test_worker_killed_mid_batch_sends_every_message_exactly_once(account, make_inbox, make_stack):
    fake = FakeWhatsApp(kill_at=KILL_AT)
    inbox = make_inbox(account, api_base_url=fake.url)
    template = {"name": "order_update", "language": "en_US"}
    messages = [
        outbound.message_create_outgoing(
            account=account, inbox=inbox, to=f"+1555000{i:04d}", template=template
        )[0]
        for i in range(1, MESSAGES + 1)
    ]
    stack = make_stack()
    # Sweeps off in the first worker: the crash must be recovered by the *next* worker.
    first = stack.start_worker(SWEEP_INTERVAL="0")
    fake.worker_pid = first.pid
    assert fake.killed.wait(60), "the worker never reached the kill point"
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert Message.objects.filter(status=Status.QUEUED).count() == MESSAGES - KILL_AT + 1
    assert SendTry.objects.filter(outcome="in_flight").count() == 1

    stack.start_worker(SWEEP_INTERVAL="0.3", SEND_IN_FLIGHT_STALE_AFTER="1", SEND_REQUEUE_AFTER="1")
    wait_for(
        lambda: (
            not Message.objects.filter(status=Status.QUEUED).exists()
            and not SendTry.objects.filter(outcome="in_flight").exists()
        ),
        timeout=60,
        message="every message handled",
    )

    per_message = fake.per_message()
    expected = {correlation.make(m.id, 1) for m in messages}
    assert set(per_message) == expected
    assert set(per_message.values()) == {1}  # exactly once each
    statuses = Counter(Message.objects.values_list("status", flat=True))
    assert statuses == {Status.SENT: MESSAGES - 1, Status.UNKNOWN: 1}
    lost = SendTry.objects.get(outcome="lost")
    assert Message.objects.get(id=lost.message_id).status == Status.UNKNOWN
    fake.httpd.shutdown()


def test_worker_with_four_send_threads_killed_mid_batch_resends_nothing(
    account, make_inbox, make_stack
):
    """Four send threads: up to four sends are in flight at the kill. Each becomes ``unknown``
    (whether or not its request had left), the rest are sent once each, none twice."""
    fake = FakeWhatsApp(kill_at=KILL_AT)
    inbox = make_inbox(account, api_base_url=fake.url)
    template = {"name": "order_update", "language": "en_US"}
    messages = [
        outbound.message_create_outgoing(
            account=account, inbox=inbox, to=f"+1555000{i:04d}", template=template
        )[0]
        for i in range(1, MESSAGES + 1)
    ]
    stack = make_stack()
    first = stack.start_worker(SWEEP_INTERVAL="0", WORKER_SEND_THREADS="4")
    fake.worker_pid = first.pid
    assert fake.killed.wait(60), "the worker never reached the kill point"
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    in_flight = SendTry.objects.filter(outcome="in_flight").count()
    assert 1 <= in_flight <= 4

    stack.start_worker(SWEEP_INTERVAL="0.3", SEND_IN_FLIGHT_STALE_AFTER="1", SEND_REQUEUE_AFTER="1")
    wait_for(
        lambda: (
            not Message.objects.filter(status=Status.QUEUED).exists()
            and not SendTry.objects.filter(outcome="in_flight").exists()
        ),
        timeout=60,
        message="every message handled",
    )

    per_message = fake.per_message()
    assert set(per_message.values()) == {1}  # none twice
    statuses = Counter(Message.objects.values_list("status", flat=True))
    assert statuses == {Status.SENT: MESSAGES - in_flight, Status.UNKNOWN: in_flight}
    unknown = {correlation.make(m.id, 1) for m in Message.objects.filter(status=Status.UNKNOWN)}
    everything = {correlation.make(m.id, 1) for m in messages}
    assert everything - unknown <= set(per_message)  # every sent one reached the provider
    assert SendTry.objects.filter(outcome="lost").count() == in_flight
    fake.httpd.shutdown()
