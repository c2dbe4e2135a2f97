"""Webhooks that arrive together are applied together — each still gets its own answer, and
each stored event stays linked to the delivery that carried it."""

import asyncio
import hashlib
import hmac
import json
import threading
from unittest import mock

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.utils import timezone

from config.asgi import application
from inbox.models import Message
from statuses import ingestion
from statuses.machine import Status
from statuses.models import StatusEvent, WebhookDelivery
from statuses.providers.base import WebhookRequest

APP_SECRET = "test_app_secret"
pytestmark = pytest.mark.django_db(transaction=True)


def body_for(wamid, status, ts):
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [{"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "1"}],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


def signed(body, secret=APP_SECRET):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-hub-signature-256": f"sha256={digest}"}


@pytest.mark.parametrize(
    "lanes",
    [
        1,
        # Several lanes are PostgreSQL's (SQLite runs one: config/settings.py). On the tests'
        # SQLite, four lanes writing at once sometimes hit an OperationalError and answered
        # 503 (1 run of 5, and 1 of 12 before this session's changes).
        pytest.param(4, marks=pytest.mark.requires_postgres("several lanes write at once")),
    ],
)
async def test_a_burst_of_webhooks_is_applied_in_batches_with_every_answer_right(
    inbox, make_message, settings, lanes
):
    settings.TICKMARK_WEBHOOK_LANES = lanes  # 4: batches on pool threads, each its own connection
    messages = [
        await sync_to_async(make_message)(
            inbox, to=f"+1555000{i:04d}", provider_message_id=f"wamid.b{i}"
        )
        for i in range(12)
    ]
    requests = []
    for i in range(12):
        for n, status in enumerate(("delivered", "read")):
            requests.append((body_for(f"wamid.b{i}", status, 1767225600 + n), None))
    requests.append((body_for("wamid.b0", "read", 1767225700), "not-the-secret"))  # forged
    requests.append((b'{"object": "whatsapp_business_account", "entry": [', None))  # malformed

    sizes = []
    real = ingestion.webhooks_receive

    def observe(items, **kwargs):
        sizes.append(len(items))
        return real(items, **kwargs)

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        with mock.patch.object(ingestion, "webhooks_receive", side_effect=observe):
            responses = await asyncio.gather(
                *(
                    client.post(
                        inbox.webhook_path, content=body, headers=signed(body, secret or APP_SECRET)
                    )
                    for body, secret in requests
                )
            )

    assert [r.status_code for r in responses] == [200] * 24 + [403, 400]
    assert max(sizes) > 1, f"no batching happened: {sizes}"
    assert sum(sizes) == len(requests)

    @sync_to_async
    def check():
        for message in messages:
            message.refresh_from_db()
            assert message.status == Status.READ
        assert WebhookDelivery.objects.filter(verdict="accepted").count() == 24
        assert WebhookDelivery.objects.filter(verdict="forbidden").count() == 1
        assert WebhookDelivery.objects.filter(verdict="malformed").count() == 1
        for event in StatusEvent.objects.filter(source="webhook").select_related("delivery"):
            carried = json.loads(bytes(event.delivery.body))
            status = carried["entry"][0]["changes"][0]["value"]["statuses"][0]
            assert (status["id"], status["status"]) == (
                event.provider_message_id,
                event.raw_status,
            )

    await check()
    await sync_to_async(connections.close_all)()  # the sync thread's connection


@pytest.mark.requires_postgres(
    "the lanes run on PostgreSQL; SQLite's shared-cache test database locks a second reader out"
)
def test_the_baton_passes_once_everything_is_written_and_before_anyone_sees_it(inbox, make_message):
    """``before_commit`` (where a lane lets the next one start, ``statuses.views._Lanes``)
    comes inside the joint transaction, after the deliveries, events and messages are written
    and before they are committed: the lane behind can only wait for these rows, never read
    them half-done."""
    messages = [
        make_message(inbox, to=f"+1555000{i:04d}", provider_message_id=f"wamid.h{i}")
        for i in range(2)
    ]
    requests = []
    for i in range(2):
        body = body_for(f"wamid.h{i}", "delivered", 1767225600)
        requests.append(
            (
                inbox,
                WebhookRequest(
                    method="POST",
                    url="http://127.0.0.1" + inbox.webhook_path,
                    path=inbox.webhook_path,
                    query={},
                    headers=signed(body),
                    body=body,
                    received_at=timezone.now(),
                    remote_addr="127.0.0.1",
                ),
            )
        )

    def committed() -> tuple[int, int]:
        """What another connection sees: only what is committed."""
        found = []

        def look():
            try:
                found.append(
                    (
                        WebhookDelivery.objects.count(),
                        Message.objects.filter(status=Status.DELIVERED).count(),
                    )
                )
            finally:
                connections.close_all()

        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        return found[0]

    seen = []

    def before_commit():
        seen.append(
            (
                connection.in_atomic_block,
                WebhookDelivery.objects.count(),
                StatusEvent.objects.count(),
                Message.objects.filter(status=Status.DELIVERED).count(),
                committed(),
            )
        )

    answers = ingestion.webhooks_receive(requests, before_commit=before_commit)

    assert [a.http_status for a in answers] == [200, 200]
    assert seen == [(True, 2, 2, 2, (0, 0))]  # written, in the transaction, not yet committed
    assert committed() == (2, 2)
    for message in messages:
        message.refresh_from_db()
        assert message.status == Status.DELIVERED
