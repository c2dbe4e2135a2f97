"""Outgoing webhooks against a real local receiver (tests.fakes.recorder.RecordingServer)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from statuses import outbound, services, signing, webhooks_out
from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription
from tests.fakes.recorder import RecordingServer, Reply


@pytest.fixture
def receiver():
    with RecordingServer() as server:
        yield server


@pytest.fixture
def subscription(account, receiver):
    return WebhookSubscription.objects.create(
        account=account,
        url=receiver.url + "/hook",
        events=["message.created", "message.status_changed"],
    )


def verify(request, secret, now=None):
    header = request.headers["x-tickmark-signature"]
    return signing.verify_signature(secret, header, request.body, now=now)


def receiver_side_verify(secret: str, header: str, body: bytes) -> bool:
    """What an integrator writes, from the documentation alone (no Tickmark code)."""
    import hashlib
    import hmac

    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_created_and_status_changed_are_delivered_signed_in_order(
    client, account, api_inbox, subscription, receiver
):
    message, _ = outbound.message_create_outgoing(
        account=account, inbox=api_inbox, to="customer-1", content="Hi"
    )
    services.message_status_report(message=message, status="delivered", source="api")
    services.message_status_report(message=message, status="read", source="api")

    assert webhooks_out.deliver_due() == 3
    assert [json.loads(r.body)["type"] for r in receiver.requests] == [
        "message.created",
        "message.status_changed",
        "message.status_changed",
    ]
    for request in receiver.requests:
        assert receiver_side_verify(
            subscription.secret, request.headers["x-tickmark-signature"], request.body
        )
        assert verify(request, subscription.secret)
        assert not verify(request, "whsec_wrong")
    created, delivered, read = (json.loads(r.body) for r in receiver.requests)
    assert set(created) == {"id", "type", "created_at", "data"}
    # The full message, exactly as GET /api/v1/messages/<id> showed it at that moment.
    api_view = client.get(f"/api/v1/messages/{message.id}").json()
    assert set(created["data"]["message"]) == set(api_view)
    assert created["data"]["message"]["status"] == "QUEUED"
    assert delivered["data"]["previous_status"] == "QUEUED"
    assert delivered["data"]["message"]["status"] == "DELIVERED"
    assert read["data"]["previous_status"] == "DELIVERED"
    assert read["data"]["message"] == api_view
    assert set(OutgoingEvent.objects.values_list("state", flat=True)) == {"delivered"}
    assert OutgoingAttempt.objects.filter(http_status=200).count() == 3


def test_retried_with_backoff_after_a_500(account, api_inbox, subscription, receiver):
    receiver.queue(Reply(500, {"oops": True}))
    message, _ = outbound.message_create_outgoing(
        account=account, inbox=api_inbox, to="customer-1", content="Hi"
    )
    services.message_status_report(message=message, status="delivered", source="api")
    now = timezone.now()

    assert webhooks_out.deliver_due(now=now) == 0
    event = OutgoingEvent.objects.get(event_type="message.created")
    assert event.state == "pending" and event.attempts == 1
    assert event.next_attempt_at == now + webhooks_out.backoff(1)
    # The status change waits behind the failed creation (order per message).
    assert len(receiver.requests) == 1
    subscription.refresh_from_db()
    assert subscription.failing_since == now

    assert webhooks_out.deliver_due(now=now + timedelta(seconds=5)) == 0  # not due yet
    assert webhooks_out.deliver_due(now=now + timedelta(seconds=11)) == 2
    types = [json.loads(r.body)["type"] for r in receiver.requests]
    assert types == ["message.created", "message.created", "message.status_changed"]
    attempts = list(
        OutgoingAttempt.objects.filter(event=event).values_list("http_status", flat=True)
    )
    assert attempts == [500, 200]
    subscription.refresh_from_db()
    assert subscription.failing_since is None and subscription.is_active


def test_backoff_grows_exponentially_and_is_capped():
    delays = [webhooks_out.backoff(n).total_seconds() for n in (1, 2, 3, 4, 12)]
    assert delays == [10, 20, 40, 80, 3600]


def test_subscription_failing_for_24_hours_is_disabled(
    client, account, api_inbox, subscription, receiver
):
    receiver.default_reply = Reply(503, "down")
    outbound.message_create_outgoing(account=account, inbox=api_inbox, to="c", content="Hi")
    start = timezone.now()
    now = start
    while now - start < timedelta(hours=25):
        webhooks_out.deliver_due(now=now)
        subscription.refresh_from_db()
        if not subscription.is_active:
            break
        now = OutgoingEvent.objects.get().next_attempt_at
    assert not subscription.is_active
    assert now - start >= timedelta(hours=24)
    assert "503" in subscription.disabled_reason
    assert OutgoingEvent.objects.get().state == "failed"
    shown = client.get(f"/api/v1/webhooks/{subscription.id}").json()
    assert shown["is_active"] is False and shown["disabled_reason"]
    # Disabled subscriptions receive nothing new.
    before = len(receiver.requests)
    outbound.message_create_outgoing(account=account, inbox=api_inbox, to="d", content="x")
    webhooks_out.deliver_due(now=now + timedelta(hours=1))
    assert len(receiver.requests) == before
    deliveries = client.get(f"/api/v1/webhooks/{subscription.id}/deliveries").json()["results"]
    assert deliveries and all(d["http_status"] == 503 for d in deliveries)


def test_unreachable_receiver_is_logged_as_an_error(account, api_inbox):
    WebhookSubscription.objects.create(
        account=account, url="http://127.0.0.1:9/closed", events=["message.created"]
    )
    outbound.message_create_outgoing(account=account, inbox=api_inbox, to="c", content="Hi")
    assert webhooks_out.deliver_due() == 0
    attempt = OutgoingAttempt.objects.get()
    # Issue #10: a generic reason, no exception text (no port-scan oracle).
    assert attempt.http_status is None and attempt.error == "connection failed"


@pytest.mark.requires_postgres(
    "the constant statement count comes from PostgreSQL's one-statement UPDATE … FROM unnest(); SQLite (embedded mode) writes changed messages row by row"
)
def test_recording_costs_constant_queries(
    account, api_inbox, subscription, make_message, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inbox.models import Message
    from statuses.providers.base import StatusUpdate

    def batch(n, offset):
        messages = [
            make_message(api_inbox, to=f"c{offset + i}", provider_message_id=f"p{offset + i}")
            for i in range(n)
        ]
        updates = [
            StatusUpdate(
                f"p{offset + i}", "delivered", "delivered", timezone.now(), f"k{offset + i}"
            )
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as ctx:
            services.status_updates_apply(inbox=api_inbox, updates=updates)
        assert (
            Message.objects.filter(id__in=[m.id for m in messages], status="delivered").count() == n
        )
        return len(ctx.captured_queries)

    assert batch(2, 0) == batch(20, 100)
    assert OutgoingEvent.objects.filter(event_type="message.status_changed").count() == 22
