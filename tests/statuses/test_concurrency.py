"""Many writers at once on PostgreSQL: the result equals the merge rule, nothing is lost,
nothing is stored twice, nothing deadlocks."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from statuses import machine, services
from statuses.models import StatusEvent
from statuses.providers.base import SendOutcome, SendResult, StatusUpdate

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
THREADS = 16

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.requires_postgres("row locks (SELECT … FOR UPDATE) and concurrent writers"),
]


def _events_for(pid, rng):
    statuses = ["sent", "delivered", "read", "failed", "sent", "delivered", "", "received"]
    events = []
    for i, status in enumerate(rng.sample(statuses, k=rng.randint(3, len(statuses)))):
        code = "131026" if status == "failed" else ""
        events.append(
            StatusUpdate(
                provider_message_id=pid,
                status=status,
                raw_status=status or "warning",
                occurred_at=T0 + timedelta(seconds=rng.randint(0, 600)),
                dedupe_key=f"{pid}:{status or 'warning'}:{i}",
                error_code=code,
            )
        )
    return events


def test_sixteen_writers_converge_on_the_merge_rule(inbox, make_message):
    rng = random.Random(20261123)
    messages = [make_message(inbox, to=f"+1555000{i:04d}", created_at=T0) for i in range(4)]
    pids = [f"wamid.c{i}" for i in range(len(messages))]
    # Half the messages get their provider id from a concurrent send response, so statuses
    # race ahead of it and must be parked, then applied.
    for message, pid in zip(messages[:2], pids[:2], strict=True):
        message.provider_message_id = pid
        message.save(update_fields=["provider_message_id"])
    unique = [event for pid in pids for event in _events_for(pid, rng)]

    work = []
    for _ in range(THREADS):
        batch = rng.sample(unique, k=rng.randint(3, 12)) + rng.sample(unique, k=3)  # + duplicates
        rng.shuffle(batch)
        work.append(batch)
    # make sure every unique event is sent at least once
    for i, event in enumerate(unique):
        work[i % THREADS].append(event)

    barrier = threading.Barrier(THREADS + 2)
    errors = []

    def writer(batch):
        try:
            barrier.wait(timeout=30)
            for chunk in (batch[: len(batch) // 2], batch[len(batch) // 2 :]):
                services.status_updates_apply(inbox=inbox, updates=chunk)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    def sender(message, pid):
        try:
            barrier.wait(timeout=30)
            services.message_record_send_result(
                message_id=message.id,
                attempt=1,
                result=SendResult(SendOutcome.ACCEPTED, provider_message_id=pid),
                occurred_at=T0,
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(batch,)) for batch in work]
    threads += [
        threading.Thread(target=sender, args=(m, p))
        for m, p in zip(messages[2:], pids[2:], strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung (deadlock?)"
    assert errors == []

    # every unique event stored exactly once, attached to its message
    assert StatusEvent.objects.filter(source="webhook").count() == len(unique)
    assert not StatusEvent.objects.filter(message__isnull=True).exists()
    total_sent = sum(len(batch) for batch in work)
    stored_dupes = sum(StatusEvent.objects.values_list("duplicate_count", flat=True))
    assert stored_dupes == total_sent - len(unique)

    for message, pid in zip(messages, pids, strict=True):
        message.refresh_from_db()
        expected_events = [
            machine.Event(e.status, e.occurred_at, e.error_code)
            for e in unique
            if e.provider_message_id == pid
        ]
        if message in messages[2:]:
            expected_events.append(machine.Event("sent", T0))
        expected = machine.merge(expected_events, created_at=message.created_at)
        assert message.provider_message_id == pid
        assert (message.status, message.sent_at, message.delivered_at, message.read_at) == (
            expected.status,
            expected.sent_at,
            expected.delivered_at,
            expected.read_at,
        )
        assert (message.failed_at, message.error_code) == (expected.failed_at, expected.error_code)
