"""No acknowledged webhook can be lost: a 200 is only ever answered after the status commits.

The fast path (the bare ASGI door, batching, lanes) must not open a window between "answered
200" and "applied". This kills the live server while a webhook's transaction is held open by a
row lock — the worst moment — and shows the provider got no 200, nothing was half-written, and
the provider's retry is applied once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading

import httpx
import psycopg
import pytest

from inbox.models import Message
from statuses.models import StatusEvent
from tests.e2e.conftest import current_database_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

APP_SECRET = "test_app_secret"


def delivered_body(wamid: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [
            {"id": wamid, "status": "delivered", "timestamp": "1767225700", "recipient_id": "1"}
        ],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


def post(stack, inbox, body: bytes, answers: list) -> None:
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"}
    try:
        response = httpx.post(
            stack.public_url + inbox.webhook_path, content=body, headers=headers, timeout=30
        )
        answers.append(response.status_code)
    except httpx.HTTPError as exc:
        answers.append(type(exc).__name__)


def test_server_killed_before_commit_answers_nothing_and_the_retry_applies_once(
    make_stack, inbox, make_message
):
    message = make_message(inbox, provider_message_id="wamid.ack", status="sent")
    stack = make_stack()
    server = stack.start_server()
    body = delivered_body("wamid.ack")

    # Hold the message's row lock: the server's status transaction blocks inside, uncommitted.
    blocker = psycopg.connect(current_database_url())
    blocker.execute("SELECT id FROM inbox_message WHERE id = %s FOR UPDATE", [message.id])
    answers: list = []
    request = threading.Thread(target=post, args=(stack, inbox, body, answers))
    request.start()

    def waiting_on_the_lock() -> bool:
        with psycopg.connect(current_database_url(), autocommit=True) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            ).fetchone()
        return row[0] > 0

    wait_for(waiting_on_the_lock, timeout=30, message="the webhook to wait for the row lock")
    assert answers == [], "answered before the status was committed"

    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    request.join(timeout=30)
    blocker.rollback()
    blocker.close()

    assert answers and answers[0] != 200, answers  # the provider saw no acknowledgement
    message.refresh_from_db()
    assert message.status == "sent"
    assert not StatusEvent.objects.filter(message=message, source="webhook").exists()

    # The provider retries (Meta does, for any answer but 200): applied, once.
    stack.start_server()
    retry: list = []
    post(stack, inbox, body, retry)
    post(stack, inbox, body, retry)  # and a duplicate of the retry
    assert retry == [200, 200]
    message.refresh_from_db()
    assert message.status == "delivered"
    events = StatusEvent.objects.filter(message=message, source="webhook")
    assert events.count() == 1
    assert events.get().duplicate_count == 1
    assert Message.objects.filter(provider_message_id="wamid.ack").count() == 1
