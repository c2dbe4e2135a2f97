"""The same consent webhook delivered many times at once (a provider retrying while the first
delivery is still being applied), on PostgreSQL: one event, one contact, the right state."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connections, transaction

from inbox import consent
from inbox.models import ConsentEvent, Contact
from statuses.providers.base import ConsentChange

THREADS = 8
AT = datetime(2026, 11, 29, 14, 5, tzinfo=UTC)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.requires_postgres("row locks (SELECT … FOR UPDATE) between concurrent writers"),
]


def test_concurrent_duplicates_record_one_event(account, make_inbox):
    inbox = make_inbox(account, "telegram")
    change = ConsentChange("123456789", True, "provider_event", "my_chat_member kicked", AT, "tg:1")
    barrier = threading.Barrier(THREADS)
    failures = []

    def deliver():
        try:
            barrier.wait()
            with transaction.atomic():  # one webhook batch's transaction
                consent.webhook_consents_apply(
                    inbox=inbox,
                    changes=[change],
                    change_delivery_ids=[None],
                    updates=[],
                    update_delivery_ids=[],
                )
        except Exception as exc:  # noqa: BLE001 (collected and asserted below)
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    contact = Contact.objects.get(inbox=inbox, address="123456789")  # created once
    assert contact.opted_out and contact.opt_out_source == "provider_event"
    assert ConsentEvent.objects.filter(contact=contact).count() == 1
