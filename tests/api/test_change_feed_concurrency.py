"""The change feed on PostgreSQL with real concurrent transactions: a transaction that writes
early and commits late is never passed over by a poller following the feed's links."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import Message
from statuses import services
from statuses.machine import Status
from statuses.providers.base import StatusUpdate
from tests.api.test_change_feed import sent_messages, whatsapp_statuses

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
    ),
]


def update(wamid, status):
    return StatusUpdate(
        provider_message_id=wamid,
        status=status,
        raw_status=status,
        occurred_at=timezone.now(),
        dedupe_key=f"{wamid}:{status}",
    )


class Poller(threading.Thread):
    """An integrator following the feed: ``next`` while there is one, then ``poll``, again and
    again, on its own connection, keeping the last state seen of each message."""

    def __init__(self, api_key, start_url):
        super().__init__(daemon=True)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        self.url = start_url
        self.view: dict[str, str] = {}
        self.seen: list[tuple[str, str]] = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def poll_once(self):
        response = self.client.get(self.url)
        assert response.status_code == 200, response.content
        page = response.json()
        with self.lock:
            for row in page["results"]:
                self.view[row["id"]] = row["status"]
                self.seen.append((row["id"], row["status"]))
        self.url = page["next"] or page["poll"]
        return page

    def run(self):
        try:
            while not self.stop.is_set():
                if not self.poll_once()["next"]:
                    time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)
        finally:
            connections.close_all()

    def statuses(self):
        with self.lock:
            return dict(self.view)


def wait_until(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_slow_writer_committing_after_a_fast_one_is_seen_by_a_poller(account, inbox, api_key):
    a, b, c = sent_messages(inbox, 3)
    poller = Poller(api_key, "/api/v1/messages?page_size=2")
    poller.start()
    assert wait_until(lambda: len(poller.statuses()) == 3)

    slow_wrote, fast_done, go_on, slow_done = (threading.Event() for _ in range(4))
    errors = []

    def slow():
        # Starts writing first (the older transaction id), writes again after the fast one
        # committed (a higher sequence number than the fast one's), commits last.
        try:
            with transaction.atomic():
                services.status_updates_apply(
                    inbox=inbox, updates=[update(a.provider_message_id, "delivered")]
                )
                slow_wrote.set()
                assert go_on.wait(20)
                services.status_updates_apply(
                    inbox=inbox, updates=[update(c.provider_message_id, "read")]
                )
            slow_done.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    def fast():
        # The real webhook path: a signed WhatsApp status for b, its own transaction.
        try:
            assert slow_wrote.wait(20)
            client = APIClient()
            raw, signature = whatsapp_statuses([b.provider_message_id], "delivered", 1767225600)
            response = client.post(
                inbox.webhook_path,
                raw,
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE_256=signature,
            )
            assert response.status_code == 200, response.content
            fast_done.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for thread in threads:
        thread.start()
    assert fast_done.wait(20), errors
    assert Message.objects.get(id=b.id).status == Status.DELIVERED  # committed, visible
    # The poller keeps polling while the slow transaction is open. b is committed, but a
    # transaction that began writing before it is still in progress, so b is held back:
    # handing it out now would move the poller's cursor past a's coming change.
    time.sleep(0.3)
    assert poller.statuses()[str(b.id)] == "SENT"
    go_on.set()
    assert slow_done.wait(20), errors
    for thread in threads:
        thread.join(20)
    assert not errors, errors

    expected = {str(a.id): "DELIVERED", str(b.id): "DELIVERED", str(c.id): "READ"}
    assert wait_until(lambda: poller.statuses() == expected), poller.statuses()
    poller.stop.set()
    poller.join(20)
    assert not poller.errors, poller.errors

    # This is the interleaving that loses changes with a timestamp or a bare sequence cursor:
    # a (the slow change) is older than b by both, and committed after b was visible.
    rows = {m.id: m for m in Message.objects.filter(id__in=[a.id, b.id, c.id])}
    assert rows[a.id].updated_at < rows[b.id].updated_at
    assert rows[a.id].change_seq < rows[b.id].change_seq < rows[c.id].change_seq
    assert rows[a.id].change_xid == rows[c.id].change_xid < rows[b.id].change_xid
    # Each change reached the poller once, in the state it committed.
    changes = [entry for entry in poller.seen if entry[1] != "SENT"]
    assert sorted(changes) == sorted(expected.items())


def test_the_horizon_is_not_held_back_by_other_databases(account, inbox, api_key):
    """A transaction open in another database of the same cluster cannot write our tables,
    so it does not delay the feed (another service, or another test run, on the server)."""
    import psycopg

    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
    )
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT pg_current_xact_id()")  # an open transaction with an id
        message = sent_messages(inbox, 1)[0]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        listed = client.get("/api/v1/messages").json()["results"]
        assert [row["id"] for row in listed] == [str(message.id)]
    finally:
        other.rollback()
        other.close()


def test_an_open_transaction_in_this_database_holds_later_changes_back(account, inbox, api_key):
    first, second = sent_messages(inbox, 2)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    start = client.get("/api/v1/messages").json()
    assert len(start["results"]) == 2
    holding, release = threading.Event(), threading.Event()

    def older_writer():
        try:
            with transaction.atomic():
                Message.objects.filter(id=first.id).update(content="edited")
                holding.set()
                release.wait(20)
        finally:
            connections.close_all()

    thread = threading.Thread(target=older_writer)
    thread.start()
    assert holding.wait(20)
    Message.objects.filter(id=second.id).update(content="later")  # commits at once
    assert client.get(start["poll"]).json()["results"] == []
    release.set()
    thread.join(20)
    page = client.get(start["poll"]).json()
    assert {(row["id"], row["content"]) for row in page["results"]} == {
        (str(first.id), "edited"),
        (str(second.id), "later"),
    }
