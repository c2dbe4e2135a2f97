"""Webhooks through the production door: the bare ASGI app in front of Django (statuses.asgi).

Every answer must be what the Django view gives for the same request (the same ingestion path
behind both), URL and query must reach signature checks byte for byte (Twilio signs them),
and nothing answers HTML.
"""

import hashlib
import hmac
import json
import uuid

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from config.asgi import application
from inbox.models import Inbox
from statuses.models import WebhookDelivery
from tests.webhooks.conftest import CONFIGS, Signed, forged, sign

# In tests/statuses, not tests/webhooks: async tests must run before the browser tests, whose
# session-wide Playwright keeps an event loop running in the main thread.
pytestmark = pytest.mark.django_db(transaction=True)


def asgi_client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application)
    return httpx.AsyncClient(transport=transport, base_url=settings.PUBLIC_BASE_URL)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/webhooks/whatsapp_cloud/not-a-uuid/", 404, "unknown_inbox"),
        ("POST", f"/webhooks/no_such_channel/{uuid.uuid4()}/", 404, "unknown_channel"),
        ("POST", f"/webhooks/whatsapp_cloud/{uuid.uuid4()}/", 404, "unknown_inbox"),
        ("PUT", f"/webhooks/whatsapp_cloud/{uuid.uuid4()}/", 405, "method_not_allowed"),
        ("POST", "/webhooks/whatsapp_cloud/", 404, "not_found"),
    ],
)
async def test_wrong_urls_get_json_errors(method, path, status, code):
    async with asgi_client() as client:
        response = await client.request(method, path, content=b"{}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code


async def test_meta_handshake_reads_the_query(inbox):
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "test-verify-token",
        "hub.challenge": "42",
    }
    async with asgi_client() as client:
        accepted = await client.get(inbox.webhook_path, params=query)
        refused = await client.get(inbox.webhook_path, params={**query, "hub.verify_token": "no"})
    assert (accepted.status_code, accepted.text) == (200, "42")
    assert refused.status_code == 403


async def test_twilio_signature_over_url_and_query_verifies(account, make_message):
    inbox = await Inbox.objects.acreate(
        account=account, name="sms", channel_type="twilio_sms", config=CONFIGS["twilio_sms"]
    )
    message = await sync_to_async(make_message)(
        inbox, to="+15558675310", provider_message_id="SM" + "a" * 32
    )
    body = f"MessageSid=SM{'a' * 32}&MessageStatus=delivered&To=%2B15558675310&AccountSid=AC1"
    query = f"tm={message.id}"
    signed = sign(inbox, body, query=query)
    headers = {"content-type": signed.content_type, **signed.headers}
    async with asgi_client() as client:
        good = await client.post(
            f"{inbox.webhook_path}?{query}", content=signed.body, headers=headers
        )
        bad = await client.post(
            f"{inbox.webhook_path}?{query}",
            content=signed.body,
            headers={"content-type": signed.content_type, **forged(signed)},
        )
    assert good.status_code == 200
    assert bad.status_code == 403
    await sync_to_async(message.refresh_from_db)()
    assert message.status == "delivered"


async def test_same_answers_as_the_django_view(inbox, make_message, async_client):
    """The same signed, forged and malformed requests through both doors answer the same."""
    await sync_to_async(make_message)(inbox, provider_message_id="wamid.door")
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "1", "phone_number_id": "106540352242922"},
        "statuses": [
            {
                "id": "wamid.door",
                "status": "delivered",
                "timestamp": "1767225600",
                "recipient_id": "1",
            }
        ],
    }
    good = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
        }
    ).encode()
    cases = [good, b'{"object": "whatsapp_business_account", "entry": [']
    answers = {"asgi": [], "django": []}
    for raw in cases:
        digest = hmac.new(b"test_app_secret", raw, hashlib.sha256).hexdigest()
        signed = Signed(raw, "application/json", {"X-Hub-Signature-256": f"sha256={digest}"})
        for door, headers in (("asgi", signed.headers), ("asgi", forged(signed))):
            async with asgi_client() as client:
                response = await client.post(
                    inbox.webhook_path,
                    content=raw,
                    headers={"content-type": "application/json", **headers},
                )
            answers[door].append((response.status_code, response.headers["content-type"]))
        for headers in (signed.headers, forged(signed)):
            response = await async_client.post(
                inbox.webhook_path,
                raw,
                content_type="application/json",
                headers=headers,
            )
            answers["django"].append((response.status_code, response["content-type"]))
    assert answers["asgi"] == answers["django"]
    assert [status for status, _ in answers["asgi"]] == [200, 403, 400, 403]
    verdicts = await sync_to_async(list)(
        WebhookDelivery.objects.filter(inbox=inbox).order_by("id").values_list("verdict", flat=True)
    )
    assert len(verdicts) == 8
