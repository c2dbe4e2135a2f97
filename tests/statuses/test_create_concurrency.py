"""Many creates at once on PostgreSQL (statuses.outbound): a repeated customer_message_id is
stored once and every caller gets that message; sends to one new contact make one contact and
one conversation; each stored message has exactly one send task."""

import threading

import pytest
from django.db import connections
from django_tasks_db.models import DBTaskResult

from inbox.models import Contact, Conversation, Message
from statuses import outbound

THREADS = 12

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.requires_postgres("concurrent upserts (INSERT … ON CONFLICT) and unique indexes"),
]


def _race(make_one):
    barrier = threading.Barrier(THREADS)
    results, errors = [None] * THREADS, []

    def run(i):
        try:
            barrier.wait()
            results[i] = make_one(i)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


@pytest.fixture
def sms(account, make_inbox):
    return make_inbox(
        account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+15550001111"
    )


def test_one_customer_message_id_from_many_callers_is_one_message(account, sms):
    results = _race(
        lambda i: outbound.message_create_outgoing(
            account=account,
            inbox=sms,
            to="+16505550001",
            content=f"try {i}",
            customer_message_id="order-1",
        )
    )
    ids = {message.id for message, _ in results}
    assert len(ids) == 1
    assert sum(created for _, created in results) == 1
    assert Message.objects.count() == 1
    assert DBTaskResult.objects.count() == 1


def test_many_first_sends_to_one_new_contact_share_its_conversation(account, sms):
    results = _race(
        lambda i: outbound.message_create_outgoing(
            account=account,
            inbox=sms,
            to="+16505550002",
            content=f"hello {i}",
            customer_message_id=f"order-{i}",
        )
    )
    assert all(created for _, created in results)
    assert Contact.objects.count() == 1
    assert Conversation.objects.count() == 1
    conversation = Conversation.objects.get()
    assert {m.conversation_id for m, _ in results} == {conversation.id}
    assert Message.objects.count() == THREADS
    assert DBTaskResult.objects.count() == THREADS
    assert conversation.last_message_at == max(m.created_at for m, _ in results)
