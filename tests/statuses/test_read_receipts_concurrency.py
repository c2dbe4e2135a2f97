"""Exactly one provider call per inbound message, whatever the number of agents opening the
conversation at once and of workers running its receipt (issue #14: "idempotent across
processes"). Real PostgreSQL connections, one per thread; a local fake provider counts calls."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from inbox.models import Conversation, Message
from statuses import read_receipts
from statuses.models import ReadReceipt
from statuses.read_receipts import Receipt
from tests.fakes.recorder import RecordingServer, Reply
from tests.statuses.read_receipt_support import (
    make_receipt_inbox,
    receipt_tasks,
    receive,
    run_worker,
)

AGENTS = 12
WORKERS = 4

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.requires_postgres("row locks (SELECT … FOR UPDATE) between real connections"),
]


def together(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released at once, each on its own connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def agents_open(conversation_id: int) -> list:
    def open_(_: int):
        conversation = Conversation.objects.select_related("inbox").get(id=conversation_id)
        return read_receipts.conversation_read(conversation=conversation)

    return together(AGENTS, open_)


def workers_run(receipt_ids: list[int]) -> None:
    """Half the threads run django-tasks-db's real worker, the others run the task body
    directly for every receipt (a duplicate task, a second process)."""

    def work(i: int) -> None:
        if i % 2:
            run_worker(f"receipts-{i}")
        else:
            for receipt_id in receipt_ids:
                read_receipts.read_receipt_send(receipt_id=receipt_id)

    together(WORKERS, work)


@pytest.mark.parametrize("channel_type", ["whatsapp_cloud", "facebook"])
def test_one_provider_call_per_inbound_message_whoever_reads(account, channel_type):
    with RecordingServer() as provider:
        # The fake answers slowly, so workers and duplicate tasks overlap in the call.
        provider.default_reply = Reply(200, {"success": True}, delay=0.2)
        inbox = make_receipt_inbox(account, channel_type, provider.url)
        conversation_id = receive(inbox, 5)[0].conversation_id

        readings = agents_open(conversation_id)

        assert sum(r.marked for r in readings) == 5  # each message stamped by one agent
        assert [r.receipt for r in readings].count(Receipt.QUEUED) == 1
        assert {r.receipt for r in readings} == {Receipt.QUEUED, Receipt.NONE}
        (receipt,) = ReadReceipt.objects.all()
        assert receipt.covers == 5
        assert receipt_tasks().count() == 1  # one task per reading, not per agent
        stamps = set(Message.objects.values_list("read_by_agent_at", flat=True))
        assert len(stamps) == 1 and None not in stamps  # one reader stamped them all

        workers_run([receipt.id])

        assert len(provider.requests) == 1
        receipt.refresh_from_db()
        assert (receipt.state, receipt.tries) == ("sent", 1)

        # Two more messages come in; everyone opens the conversation again.
        later = receive(inbox, 2, start=5)
        readings = agents_open(conversation_id)

        assert sum(r.marked for r in readings) == 2
        assert [r.receipt for r in readings].count(Receipt.QUEUED) == 1
        assert ReadReceipt.objects.count() == 2 and receipt_tasks().count() == 2
        newest = ReadReceipt.objects.exclude(id=receipt.id).get()
        assert (newest.message_id, newest.covers) == (later[-1].id, 2)

        workers_run([receipt.id, newest.id])

        assert len(provider.requests) == 2  # one call per reading: 7 messages, 2 calls
        if channel_type == "whatsapp_cloud":
            named = [r.json()["message_id"] for r in provider.requests]
            assert named == ["in.whatsapp_cloud.4", "in.whatsapp_cloud.6"]
        else:
            assert {r.json()["sender_action"] for r in provider.requests} == {"mark_seen"}
        assert set(ReadReceipt.objects.values_list("state", flat=True)) == {"sent"}
