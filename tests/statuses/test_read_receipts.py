"""Read receipts back to providers (issue #14 part 2): who owes one, the exact provider calls
at a local fake of each provider's API, retries with backoff, giving up, and the setting."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from inbox.models import Message
from statuses import read_receipts
from statuses.models import ReadReceipt
from statuses.read_receipts import Receipt
from tests.fakes.recorder import RecordingServer, Reply
from tests.statuses.read_receipt_support import (
    CONFIGS,
    CONTACTS,
    PSID,
    make_receipt_inbox,
    receipt_tasks,
    receive,
    run_worker,
)

# The real worker (django-tasks-db) closes connections between tasks: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider():
    with RecordingServer() as server:
        yield server


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def wa_inbox(account, provider):
    return make_receipt_inbox(account, "whatsapp_cloud", provider.url)


def read(conversation):
    return read_receipts.conversation_read(conversation=conversation)


def test_opening_stamps_every_unread_inbound_message_and_owes_one_receipt(wa_inbox, make_message):
    messages = receive(wa_inbox, 3)
    conversation = messages[0].conversation
    outgoing = make_message(wa_inbox, to=CONTACTS["whatsapp_cloud"])
    conversation.refresh_from_db()
    assert conversation.unread_count == 3

    reading = read(conversation)

    assert (reading.marked, reading.receipt) == (3, Receipt.QUEUED)
    stamped = Message.objects.filter(direction="incoming", read_by_agent_at__isnull=False)
    assert stamped.count() == 3
    outgoing.refresh_from_db()
    assert outgoing.read_by_agent_at is None
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    (receipt,) = ReadReceipt.objects.all()
    assert receipt.message_id == messages[-1].id  # the newest: it marks the earlier ones
    assert (receipt.covers, receipt.state, receipt.tries) == (3, "pending", 0)
    (task,) = receipt_tasks()
    assert task.args_kwargs["args"] == [receipt.id]
    assert task.queue_name == "send"

    again = read(conversation)

    assert (again.marked, again.receipt) == (0, Receipt.NONE)
    assert ReadReceipt.objects.count() == 1 and receipt_tasks().count() == 1


def test_a_later_message_gets_its_own_receipt_naming_only_itself(wa_inbox, provider):
    first = receive(wa_inbox, 2)
    read(first[0].conversation)
    later = receive(wa_inbox, 1, start=2)
    reading = read(first[0].conversation)
    assert (reading.marked, reading.receipt) == (1, Receipt.QUEUED)
    run_worker()
    assert [r.json()["message_id"] for r in provider.requests] == [
        "in.whatsapp_cloud.1",
        later[0].provider_message_id,
    ]
    assert ReadReceipt.objects.filter(state="sent").count() == 2


def test_newest_message_with_a_provider_id_is_named(wa_inbox, provider):
    messages = receive(wa_inbox, 2)
    Message.objects.filter(id=messages[-1].id).update(provider_message_id=None)
    read(messages[0].conversation)
    run_worker()
    (request,) = provider.requests
    assert request.json()["message_id"] == messages[0].provider_message_id


EXPECTED_CALLS = {
    # channel type: (path, query, auth header name and value, body) — as each provider documents
    "whatsapp_cloud": (
        "/v21.0/106540352242922/messages",
        {},
        ("authorization", "Bearer wa-access-token"),
        {"messaging_product": "whatsapp", "status": "read", "message_id": "in.whatsapp_cloud.2"},
    ),
    "whatsapp_360dialog": (
        "/messages",
        {},
        ("d360-api-key", "d360-key"),
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "in.whatsapp_360dialog.2",
        },
    ),
    "facebook": (
        "/v21.0/me/messages",
        {"access_token": ["page-token"]},
        None,
        {"recipient": {"id": PSID}, "sender_action": "mark_seen"},
    ),
    "instagram": (
        "/v21.0/17841400000000/messages",
        {},
        ("authorization", "Bearer ig-token"),
        {"recipient": {"id": "17841455555555"}, "sender_action": "mark_seen"},
    ),
}


@pytest.mark.parametrize("channel_type", sorted(EXPECTED_CALLS))
def test_the_provider_gets_its_documented_read_receipt(account, provider, channel_type):
    inbox = make_receipt_inbox(account, channel_type, provider.url)
    if channel_type == "facebook":
        provider.default_reply = Reply(200, {"recipient_id": PSID})
    elif channel_type.startswith("whatsapp"):
        provider.default_reply = Reply(200, {"success": True})
    messages = receive(inbox, 3)

    read(messages[0].conversation)
    run_worker()

    path, query, auth, body = EXPECTED_CALLS[channel_type]
    (request,) = provider.requests
    assert request.method == "POST"
    assert request.path == path
    assert request.query == query
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == body
    if auth is None:
        assert "authorization" not in request.headers  # Messenger: the Page token in the query
    else:
        name, value = auth
        assert request.headers[name] == value
    if channel_type == "whatsapp_360dialog":
        assert "authorization" not in request.headers
    (receipt,) = ReadReceipt.objects.all()
    assert (receipt.state, receipt.tries, receipt.covers) == ("sent", 1, 3)
    assert receipt.finished_at is not None


def test_setting_off_stamps_the_messages_but_never_calls_the_provider(account, provider):
    inbox = make_receipt_inbox(account, "whatsapp_cloud", provider.url, send_read_receipts=False)
    messages = receive(inbox, 2)

    reading = read(messages[0].conversation)
    run_worker()

    assert (reading.marked, reading.receipt) == (2, Receipt.OFF)
    assert Message.objects.filter(read_by_agent_at__isnull=False).count() == 2
    assert not ReadReceipt.objects.exists() and not receipt_tasks().exists()
    assert provider.requests == []


def test_setting_turned_off_before_the_worker_runs_cancels_the_receipt(wa_inbox, provider):
    messages = receive(wa_inbox, 1)
    read(messages[0].conversation)
    wa_inbox.send_read_receipts = False
    wa_inbox.save(update_fields=["send_read_receipts"])

    run_worker()

    assert provider.requests == []
    assert ReadReceipt.objects.get().state == "cancelled"


def test_channel_without_read_receipts_owes_none(account, make_inbox, provider):
    inbox = make_inbox(
        account,
        "twilio_sms",
        account_sid="AC123",
        auth_token="twilio-token",
        from_number="+15550001111",
        api_base_url=provider.url,
    )
    messages = receive(inbox, 1, address="+15550002222")
    reading = read(messages[0].conversation)
    assert (reading.marked, reading.receipt) == (1, Receipt.UNSUPPORTED)
    assert not ReadReceipt.objects.exists() and provider.requests == []


def test_transient_failures_are_retried_then_given_up_and_logged(
    wa_inbox, provider, settings, caplog
):
    settings.READ_RECEIPT_MAX_TRIES = 3
    settings.READ_RECEIPT_RETRY_BASE = 0  # no wait between tries: the worker runs them all now
    busy = {"error": {"message": "Service unavailable", "code": 2, "type": "OAuthException"}}
    provider.default_reply = Reply(503, busy)
    messages = receive(wa_inbox, 2)
    read(messages[0].conversation)

    with caplog.at_level(logging.INFO, logger="statuses.read_receipts"):
        run_worker()

    assert len(provider.requests) == 3  # exactly MAX_TRIES calls, then no more
    receipt = ReadReceipt.objects.get()
    assert (receipt.state, receipt.tries) == ("failed", 3)
    assert receipt.error_code == "2"
    assert receipt_tasks().filter(status="READY").count() == 0
    given_up = [r for r in caplog.records if "given up" in r.getMessage()]
    assert len(given_up) == 1 and given_up[0].levelno == logging.WARNING
    assert "wa-access-token" not in caplog.text  # no secret in any log line
    run_worker()
    assert len(provider.requests) == 3


def test_retry_after_is_respected_then_the_retry_succeeds(wa_inbox, provider):
    provider.queue(
        Reply(429, {"error": {"message": "slow down", "code": 4}}, {"Retry-After": "120"})
    )
    provider.default_reply = Reply(200, {"success": True})
    messages = receive(wa_inbox, 1)
    read(messages[0].conversation)

    before = timezone.now()
    run_worker()

    assert len(provider.requests) == 1
    receipt = ReadReceipt.objects.get()
    assert (receipt.state, receipt.tries) == ("pending", 1)
    assert receipt.next_try_at >= before + timedelta(seconds=119)
    retry = receipt_tasks().get(status="READY")
    assert retry.run_after >= before + timedelta(seconds=119)
    # A duplicate task arriving early finds the receipt not due and does nothing.
    assert read_receipts.read_receipt_send(receipt_id=receipt.id) == "skipped"
    assert len(provider.requests) == 1

    # Two minutes later:
    ReadReceipt.objects.filter(id=receipt.id).update(next_try_at=timezone.now())
    receipt_tasks().filter(id=retry.id).update(run_after=timezone.now())
    run_worker()

    assert len(provider.requests) == 2
    receipt.refresh_from_db()
    assert (receipt.state, receipt.tries) == ("sent", 2)


def test_a_refusal_is_given_up_at_once(wa_inbox, provider, caplog):
    provider.default_reply = Reply(
        400,
        {
            "error": {
                "message": "(#100) Invalid parameter",
                "type": "OAuthException",
                "code": 100,
                "fbtrace_id": "AbC",
            }
        },
    )
    messages = receive(wa_inbox, 1)
    read(messages[0].conversation)
    with caplog.at_level(logging.WARNING, logger="statuses.read_receipts"):
        run_worker()
    assert len(provider.requests) == 1
    receipt = ReadReceipt.objects.get()
    assert (receipt.state, receipt.error_code) == ("failed", "100")
    assert "given up after 1 tries" in caplog.text


def test_unreachable_provider_is_retried(wa_inbox, settings, closed_port):
    settings.READ_RECEIPT_MAX_TRIES = 2
    settings.READ_RECEIPT_RETRY_BASE = 0
    wa_inbox.config = {
        **CONFIGS["whatsapp_cloud"],
        "api_base_url": f"http://127.0.0.1:{closed_port}",
    }
    wa_inbox.save(update_fields=["config"])
    messages = receive(wa_inbox, 1)
    read(messages[0].conversation)
    run_worker()
    receipt = ReadReceipt.objects.get()
    assert (receipt.state, receipt.tries, receipt.error_code) == ("failed", 2, "connection_failed")


def test_a_private_address_is_refused_by_the_guard(wa_inbox, settings, provider):
    """Receipts go through the guarded client like sends: a tenant's base URL on a private
    address is never called (issue #10)."""
    settings.TICKMARK_ALLOW_PRIVATE_URLS = False
    read_receipts._client = None  # a client built under the setting above
    try:
        messages = receive(wa_inbox, 1)
        read(messages[0].conversation)
        run_worker()
    finally:
        read_receipts._client = None
    assert provider.requests == []
    assert ReadReceipt.objects.get().error_code == "connection_failed"


def test_retry_delay_grows_and_honours_retry_after(settings):
    settings.READ_RECEIPT_RETRY_BASE = 10
    settings.READ_RECEIPT_RETRY_MAX_DELAY = 60
    assert 5 <= read_receipts.retry_delay(1) <= 10
    assert 20 <= read_receipts.retry_delay(3) <= 40
    assert 30 <= read_receipts.retry_delay(9) <= 60
    assert read_receipts.retry_delay(1, retry_after=300) == 300
    assert read_receipts.retry_delay(1, retry_after=99999) == 3600
