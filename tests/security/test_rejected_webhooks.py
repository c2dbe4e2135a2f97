"""Strangers cannot fill the disk (issue #10 item 3): rejected webhook calls keep size, hash,
selected headers and the verdict — not the body; rejected calls are rate limited per inbox and
source address; old records are deleted in batches by the retention sweep."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from statuses import sweeps
from statuses.models import StatusEvent, WebhookDelivery

pytestmark = pytest.mark.django_db
APP_SECRET = "test_app_secret"  # tests/conftest.py make_inbox's whatsapp_cloud default


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def body(size: int = 0) -> bytes:
    doc = {"object": "whatsapp_business_account", "entry": []}
    if size:
        doc["padding"] = "x" * size
    return json.dumps(doc).encode()


def post(client, inbox, raw, *, secret="forged", addr="203.0.113.9"):
    headers = {"REMOTE_ADDR": addr}
    if secret is not None:
        digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers["HTTP_X_HUB_SIGNATURE_256"] = "sha256=" + digest
    return client.post(inbox.webhook_path, raw, content_type="application/json", **headers)


def stored_body_bytes() -> int:
    return sum(len(bytes(b)) for b in WebhookDelivery.objects.values_list("body", flat=True))


def test_a_forged_call_keeps_size_hash_headers_and_verdict_but_no_body(client, inbox):
    raw = body(50_000)
    response = post(client, inbox, raw)
    assert response.status_code == 403
    delivery = WebhookDelivery.objects.get()
    assert delivery.verdict == "forbidden"
    assert bytes(delivery.body) == b""
    assert delivery.body_size == len(raw)
    assert delivery.body_sha256 == hashlib.sha256(raw).hexdigest()
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["x-hub-signature-256"].startswith("sha256=")


def test_an_accepted_call_keeps_its_body(client, inbox):
    raw = body()
    assert post(client, inbox, raw, secret=APP_SECRET).status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.verdict, bytes(delivery.body), delivery.body_size) == (
        "accepted",
        raw,
        len(raw),
    )


def test_twenty_anonymous_bodies_to_the_widget_inbox_store_no_body(
    client, account, make_inbox, settings
):
    settings.TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE = 100  # measure storage, not the limit
    widget = make_inbox(account, "web_widget")
    raw = b"A" * 2_400_000
    for _ in range(20):
        response = client.post(widget.webhook_path, raw, content_type="application/octet-stream")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
    assert WebhookDelivery.objects.filter(inbox=widget).count() == 20
    assert stored_body_bytes() == 0
    assert set(WebhookDelivery.objects.values_list("body_size", flat=True)) == {len(raw)}


def test_rejected_calls_over_the_limit_get_429_and_are_not_recorded(client, inbox, settings):
    settings.TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE = 5
    answers = [post(client, inbox, body()) for _ in range(8)]
    assert [a.status_code for a in answers] == [403] * 5 + [429] * 3
    limited = answers[-1]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert WebhookDelivery.objects.count() == 5

    # Another source is counted on its own; a genuine call is never refused by the limiter.
    assert post(client, inbox, body(), addr="198.51.100.7").status_code == 403
    assert post(client, inbox, body(), secret=APP_SECRET).status_code == 200


def test_the_limit_is_per_inbox(client, inbox, account, make_inbox, settings):
    settings.TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE = 2
    other = make_inbox(account)
    assert [post(client, inbox, body()).status_code for _ in range(3)] == [403, 403, 429]
    assert post(client, other, body()).status_code == 403


# --- retention ----------------------------------------------------------------------------------


def make_delivery(inbox, verdict, age: timedelta, now):
    return WebhookDelivery.objects.create(
        inbox=inbox,
        channel_type=inbox.channel_type,
        method="POST",
        path=inbox.webhook_path,
        body=b"{}" if verdict != "forbidden" else b"",
        body_size=2,
        verdict=verdict,
        http_status=403 if verdict == "forbidden" else 200,
        received_at=now - age,
    )


def make_event(inbox, delivery, outcome, key):
    return StatusEvent.objects.create(
        inbox=inbox,
        provider_message_id=f"wamid.{key}",
        status="delivered",
        raw_status="delivered",
        occurred_at=delivery.received_at,
        outcome=outcome,
        dedupe_key=key,
        delivery=delivery,
    )


def test_the_sweep_deletes_old_records_in_batches_and_keeps_recent_ones(inbox, settings):
    settings.TICKMARK_KEEP_ACCEPTED_DAYS = 14
    settings.TICKMARK_KEEP_REJECTED_DAYS = 2
    now = timezone.now()
    old_rejected = [make_delivery(inbox, "forbidden", timedelta(days=3), now) for _ in range(5)]
    new_rejected = make_delivery(inbox, "forbidden", timedelta(days=1), now)
    old_accepted = make_delivery(inbox, "accepted", timedelta(days=15), now)
    new_accepted = make_delivery(inbox, "accepted", timedelta(days=3), now)
    old_parked = make_delivery(inbox, "accepted", timedelta(days=20), now)
    applied_event = make_event(inbox, old_accepted, StatusEvent.Outcome.APPLIED, "k1")
    parked_event = make_event(inbox, old_parked, StatusEvent.Outcome.PARKED, "k2")

    # One batch of 2 per run: the rest waits for the next run.
    assert sweeps.deliveries_prune(now=now, batch=2, max_batches=1) == 2
    assert WebhookDelivery.objects.count() == 9 - 2

    with CaptureQueriesContext(connection) as queries:
        assert sweeps.deliveries_prune(now=now, batch=2) == 4
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 2  # the 4 remaining old rows, 2 per statement

    kept = set(WebhookDelivery.objects.values_list("id", flat=True))
    assert kept == {new_rejected.id, new_accepted.id, old_parked.id}
    assert not kept & {d.id for d in old_rejected}
    applied_event.refresh_from_db()
    parked_event.refresh_from_db()
    assert applied_event.delivery_id is None  # the event stays, its link to the body goes
    assert parked_event.delivery_id == old_parked.id
    assert bytes(WebhookDelivery.objects.get(id=old_parked.id).body) == b"{}"

    # Once the parked event is given up on, its delivery goes too.
    StatusEvent.objects.filter(id=parked_event.id).update(outcome=StatusEvent.Outcome.UNMATCHED)
    assert sweeps.deliveries_prune(now=now) == 1
    assert sweeps.deliveries_prune(now=now) == 0


def test_the_worker_sweeps_run_the_retention_sweep(inbox):
    now = timezone.now()
    make_delivery(inbox, "forbidden", timedelta(days=30), now)
    assert sweeps.run_all(now=now)["deliveries_prune"] == 1
    assert not WebhookDelivery.objects.exists()


def test_rotating_ipv6_addresses_in_one_64_share_a_count(client, inbox, settings):
    settings.TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE = 2
    codes = [
        post(client, inbox, body(), addr=f"2001:db8:1:2::{n:x}").status_code for n in range(1, 5)
    ]
    assert codes == [403, 403, 429, 429]
    assert post(client, inbox, body(), addr="2001:db8:1:3::1").status_code == 403
