"""Each provider's spec decides which of a webhook's headers are kept with its recorded
delivery: its signature headers and the common ones, never a credential or anything else."""

from __future__ import annotations

import pytest
from django.utils import timezone

from statuses import providers
from statuses.ingestion import COMMON_KEPT_HEADERS, webhook_receive
from statuses.models import WebhookDelivery
from statuses.providers.base import WebhookRequest

SIGNING = sorted(ct for ct, spec in providers.REGISTRY.items() if spec.kept_headers)
OTHER_SIGNATURES = set().union(*(spec.kept_headers for spec in providers.SPECS))


def test_the_providers_that_sign_declare_their_signature_headers():
    assert set(SIGNING) >= {"whatsapp_cloud", "twilio_sms", "line", "viber", "tiktok"}


@pytest.mark.parametrize("channel_type", SIGNING)
def test_a_rejected_call_keeps_only_its_providers_signature_and_common_headers(
    account, make_inbox, channel_type
):
    inbox = make_inbox(account, channel_type)  # no secrets configured: every call is refused
    headers = {header: "sig" for header in OTHER_SIGNATURES}
    headers |= {
        "content-type": "application/json",
        "user-agent": "Provider/1.0",
        "authorization": "Basic c2VjcmV0",
        "x-webhook-token": "secret",
        "x-telegram-bot-api-secret-token": "secret",
        "x-something-else": "1",
    }
    request = WebhookRequest(
        method="POST",
        url=f"https://tickmark.example/webhooks/{channel_type}/{inbox.id}/",
        path=f"/webhooks/{channel_type}/{inbox.id}/",
        query={},
        headers=headers,
        body=b"{}",
        received_at=timezone.now(),
        remote_addr="203.0.113.9",
    )

    assert webhook_receive(inbox=inbox, request=request).http_status == 403

    delivery = WebhookDelivery.objects.get(inbox=inbox)
    kept = providers.get(channel_type).kept_headers
    assert set(delivery.headers) == kept | {"content-type", "user-agent"}
    assert set(delivery.headers) <= kept | COMMON_KEPT_HEADERS
