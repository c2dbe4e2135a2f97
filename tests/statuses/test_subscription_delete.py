"""Deleting a webhook subscription is safe at any moment (issue #10 item 4): while a status
transaction that writes its events is still open, and while a delivery to it is in flight.
Real PostgreSQL transactions in threads."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from statuses import outbound, outgoing, services, webhooks_out
from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription
from tests.fakes.slow_receiver import SlowReceiver

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
]


def in_thread(fn):
    """Run ``fn`` in a thread with its own connection; keep its error for the test."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.fixture
def api_inbox(account, make_inbox):
    return make_inbox(account, "api", webhook_url="http://127.0.0.1:9/x", hmac_secret="secret")


@pytest.fixture
def message(account, api_inbox):
    WebhookSubscription.objects.create(
        account=account, url="http://127.0.0.1:9/other", events=["message.status_changed"]
    )
    message, _ = outbound.message_create_outgoing(
        account=account, inbox=api_inbox, to="customer-1", content="Hi"
    )
    return message


def test_delete_while_a_status_transaction_writes_its_events(account, message):
    doomed = WebhookSubscription.objects.create(
        account=account, url="http://127.0.0.1:9/doomed", events=["message.status_changed"]
    )
    written = threading.Event()
    go_on = threading.Event()

    def status_change():
        with transaction.atomic():
            services.message_status_report(message=message, status="delivered", source="api")
            written.set()  # events for both subscriptions inserted, not committed yet
            go_on.wait(10)

    status_thread, status_outcome = in_thread(status_change)
    assert written.wait(10)
    delete_thread, delete_outcome = in_thread(
        lambda: outgoing.subscription_delete(subscription=doomed)
    )
    time.sleep(0.5)
    assert delete_thread.is_alive()  # the delete waits for the status transaction …
    go_on.set()
    status_thread.join(10)
    delete_thread.join(10)
    assert "error" not in status_outcome, status_outcome  # … which commits without error
    assert "error" not in delete_outcome, delete_outcome
    message.refresh_from_db()
    assert message.status == "delivered"
    assert not WebhookSubscription.objects.filter(id=doomed.id).exists()
    # The surviving subscription got its event; the deleted one's went with it.
    assert OutgoingEvent.objects.filter(event_type="message.status_changed").count() == 1
    assert not OutgoingEvent.objects.filter(subscription_id=doomed.id).exists()


def test_status_change_while_a_delete_is_in_progress(account, message):
    doomed = WebhookSubscription.objects.create(
        account=account, url="http://127.0.0.1:9/doomed", events=["message.status_changed"]
    )
    deleted = threading.Event()
    go_on = threading.Event()

    def delete():
        with transaction.atomic():
            outgoing.subscription_delete(subscription=doomed)
            deleted.set()
            go_on.wait(10)

    delete_thread, delete_outcome = in_thread(delete)
    assert deleted.wait(10)
    status_thread, status_outcome = in_thread(
        lambda: services.message_status_report(message=message, status="delivered", source="api")
    )
    time.sleep(0.5)
    go_on.set()
    delete_thread.join(10)
    status_thread.join(10)
    assert "error" not in delete_outcome, delete_outcome
    assert "error" not in status_outcome, status_outcome
    message.refresh_from_db()
    assert message.status == "delivered"
    assert not OutgoingEvent.objects.filter(subscription_id=doomed.id).exists()
    assert OutgoingEvent.objects.filter(event_type="message.status_changed").count() == 1


def test_delete_while_a_delivery_is_in_flight(account, message, settings):
    settings.WEBHOOK_TIMEOUT = 5
    with SlowReceiver(delay=1.5) as slow:
        doomed = WebhookSubscription.objects.create(
            account=account, url=slow.url + "/doomed", events=["message.status_changed"]
        )
        services.message_status_report(message=message, status="delivered", source="api")
        OutgoingEvent.objects.exclude(subscription=doomed).delete()
        delivery_thread, delivery_outcome = in_thread(webhooks_out.deliver_due)
        deadline = time.monotonic() + 10
        while not slow.count() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.count() == 1  # the POST is in flight
        outgoing.subscription_delete(subscription=doomed)
        delivery_thread.join(10)
    assert "error" not in delivery_outcome, delivery_outcome
    assert delivery_outcome["value"] == 0
    assert not WebhookSubscription.objects.filter(id=doomed.id).exists()
    assert not OutgoingAttempt.objects.exists()
