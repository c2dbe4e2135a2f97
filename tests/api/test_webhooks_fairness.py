"""Outgoing webhooks never let one tenant stall another (issue #10 item 4), run through the
webhooks lane's own function (``webhooks_out.deliver_due``) against real local receivers."""

import time

import pytest

from inbox.models import Account
from statuses import outbound, webhooks_out
from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription
from tests.fakes.slow_receiver import SlowReceiver

pytestmark = pytest.mark.django_db


def subscribe(account, url, n=1, prefix="hook"):
    return [
        WebhookSubscription.objects.create(
            account=account, url=f"{url}/{prefix}{i}", events=["message.created"]
        )
        for i in range(n)
    ]


def test_a_slow_tenant_takes_at_most_its_share_and_others_go_first(
    account, api_inbox, make_inbox, settings
):
    settings.WEBHOOK_CONCURRENCY = 8
    settings.WEBHOOK_MAX_CONCURRENT_PER_SUBSCRIPTION = 2
    settings.WEBHOOK_MAX_CONCURRENT_PER_ACCOUNT = 4
    tenant_b = Account.objects.create(name="Slow Corp")
    b_inbox = make_inbox(tenant_b, "api", webhook_url="http://127.0.0.1:9/x", hmac_secret="s")
    with SlowReceiver(delay=0.5) as slow, SlowReceiver(delay=0) as fast:
        subscribe(tenant_b, slow.url, n=12)
        # B's burst comes first: 3 messages x 12 subscriptions = 36 events, due before A's.
        for i in range(3):
            outbound.message_create_outgoing(
                account=tenant_b, inbox=b_inbox, to=f"b-{i}", content="hi"
            )
        subscribe(account, fast.url)
        outbound.message_create_outgoing(account=account, inbox=api_inbox, to="a-1", content="hi")
        assert OutgoingEvent.objects.count() == 37

        started = time.monotonic()
        delivered = webhooks_out.deliver_due()
        elapsed = time.monotonic() - started

        assert delivered == 37
        ((a_path, a_at),) = fast.received
        assert a_at - started < 1.0  # A did not queue behind B's 36 slow deliveries
        assert elapsed >= 36 / 4 * 0.5 * 0.9  # B never had more than 4 in flight …
        assert slow.peak_total <= 4
        assert max(slow.peak.values()) <= 2  # … nor more than 2 on one subscription
    assert OutgoingEvent.objects.filter(state="delivered").count() == 37


def test_each_delivery_is_bounded_by_the_total_timeout(account, api_inbox, settings):
    settings.WEBHOOK_TIMEOUT = 1.0
    settings.WEBHOOK_CONNECT_TIMEOUT = 1.0
    with SlowReceiver(delay=30) as slow:
        subscribe(account, slow.url)
        outbound.message_create_outgoing(account=account, inbox=api_inbox, to="a-1", content="hi")
        started = time.monotonic()
        assert webhooks_out.deliver_due() == 0
        assert time.monotonic() - started < 5
    attempt = OutgoingAttempt.objects.get()
    assert attempt.http_status is None
    assert attempt.error == "timed out"  # a generic reason, never the exception text (SSRF)
    assert OutgoingEvent.objects.get().state == "pending"  # retried later, with backoff


def test_subscriptions_per_account_are_capped(client, other_client, account, settings):
    settings.WEBHOOK_MAX_SUBSCRIPTIONS_PER_ACCOUNT = 3
    body = {"url": "https://example.com/hook"}
    ids = [client.post("/api/v1/webhooks", body, format="json").json()["id"] for _ in range(3)]
    refused = client.post("/api/v1/webhooks", body, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "too_many_webhooks"
    assert "at most 3" in refused.json()["error"]["message"]
    assert WebhookSubscription.objects.filter(account=account).count() == 3
    # Another account has its own allowance; deleting one frees a place.
    assert other_client.post("/api/v1/webhooks", body, format="json").status_code == 201
    assert client.delete(f"/api/v1/webhooks/{ids[0]}").status_code == 204
    assert client.post("/api/v1/webhooks", body, format="json").status_code == 201


def test_admin_deletes_subscriptions_and_their_events_through_the_safe_service(
    admin_client, account, api_inbox
):
    first, second = subscribe(account, "https://example.com", n=2)
    outbound.message_create_outgoing(account=account, inbox=api_inbox, to="a", content="x")
    assert OutgoingEvent.objects.count() == 2
    page = admin_client.post(
        f"/admin/statuses/webhooksubscription/{first.id}/delete/", {"post": "yes"}
    )
    assert page.status_code == 302
    changelist = admin_client.post(
        "/admin/statuses/webhooksubscription/",
        {"action": "delete_selected", "_selected_action": [second.id], "post": "yes"},
    )
    assert changelist.status_code == 302
    assert not WebhookSubscription.objects.exists()
    assert not OutgoingEvent.objects.exists()
