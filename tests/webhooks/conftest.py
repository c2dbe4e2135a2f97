"""Endpoint-level webhook tests: one inbox per provider with realistic secrets, and a signer per
provider that produces exactly the headers the provider would send (DESIGN §5, reference §13).

Every test posts through ``django.test.Client`` to the inbox's real URL
(``/webhooks/<channel_type>/<inbox_id>/``), so routing, the view, ingestion, services and
PostgreSQL all take part.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from twilio.request_validator import RequestValidator

from inbox.models import Inbox, Message
from statuses.models import StatusEvent, WebhookDelivery

# Realistic-looking (fake) secrets, one set per channel type (DESIGN §4.1).
CONFIGS: dict[str, dict[str, Any]] = {
    "whatsapp_360dialog": {
        "api_key": "D360-live-9fQ2kLmN4pR7sT1vX3zA",
        "webhook_token": "wh-360-6b1e9c4f2a7d48e0b3c5a9f1",
    },
    "twilio_sms": {
        "account_sid": "AC" + "0f" * 16,
        "auth_token": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
        "from_number": "+15017250604",
    },
    "twilio_whatsapp": {
        "account_sid": "AC" + "1e" * 16,
        "auth_token": "0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a",
        "from_number": "whatsapp:+14155238886",
    },
    "facebook": {
        "page_id": "101234567890123",
        "page_access_token": "EAAGm0PX4ZCpsBAFakePageToken",
        "app_secret": "3f1e5c7a9b2d4f6e8a0c1b3d5f7e9a2c",
        "verify_token": "fb-verify-8c2e",
    },
    "instagram": {
        "ig_user_id": "17841400000000001",
        "access_token": "IGQVJFakeInstagramToken",
        "app_secret": "c4e6a8b0d2f41357acebd9f8e7c6b5a4",
        "verify_token": "ig-verify-1f7a",
    },
    "tiktok": {
        "business_id": "-000TESTBUSINESSOPENID",
        "access_token": "act.example.tiktok.token",
        "client_secret": "tt-secret-5d9a8c7b6e5f4a3b2c1d",
    },
    "bandwidth_sms": {
        "account_id": "9900000",
        "application_id": "cfd4fb83-7531-4acc-b471-42d0bb76a65c",
        "username": "api-user",
        "password": "api-password-7Qx",
        "from_number": "+15552221111",
        "callback_username": "tickmark-callbacks",
        "callback_password": "cb-pass-3Rk9vLw2",
    },
    "line": {
        "channel_access_token": "LINE-long-lived-access-token",
        "channel_secret": "test_channel_secret",  # the reference §13 vector's key
    },
    "telegram": {
        "bot_token": "7012345678:AAFakeBotTokenForTestsOnly0123456",
        "secret_token": "tg-secret_Token-9876543210",
    },
    "viber": {
        "auth_token": "test-viber-auth-token",  # the reference §13 vector's key
        "sender_name": "Acme Support",
    },
    "email": {
        "smtp_host": "smtp.acme.example",
        "smtp_port": 587,
        "from_address": "Acme Support <support@acme.example>",
        "webhook_token": "mail-hook-4e2a91c7",
    },
    "api": {"webhook_url": "https://integrator.example/hooks/tickmark", "hmac_secret": "whsec_x"},
    "web_widget": {"title": "Chat with Acme"},
}

CONTACTS = {
    "whatsapp_360dialog": "+16505076520",
    "twilio_sms": "+15558675310",
    "twilio_whatsapp": "+15558675310",
    "facebook": "6412345678901234",
    "instagram": "1092310252982105",
    "tiktok": "7200000000000000001",
    "bandwidth_sms": "+15554443333",
    "line": "U4af4980629aaaaaaaaaaaaaaaaaaaaaa",
    "telegram": "123456789",
    "viber": "01234567890A=",
    "email": "ghost@example.org",
    "api": "contact-1",
    "web_widget": "visitor-1",
}


@dataclass
class Signed:
    """A body ready to post: raw bytes, content type and the provider's headers."""

    body: bytes
    content_type: str
    headers: dict[str, str]  # real header names
    query: str = ""


def _bytes(body: bytes | str | dict | list) -> bytes:
    if isinstance(body, dict | list):
        return json.dumps(body).encode()
    if isinstance(body, str):
        return body.encode()
    return body


class _QueryParams(dict):
    """The POST params as Twilio's RequestValidator reads a Django QueryDict (``getlist``)."""

    def getlist(self, name):
        return self[name]


def twilio_params(body: bytes) -> _QueryParams:
    # The same decoding the adapter (and Django's request.POST) applies to the raw body.
    return _QueryParams(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


def public_url(inbox: Inbox, query: str = "") -> str:
    return settings.PUBLIC_BASE_URL + inbox.webhook_path + (f"?{query}" if query else "")


def sign(inbox: Inbox, body: bytes | str | dict | list, *, query: str = "", **options) -> Signed:
    """Sign ``body`` for ``inbox`` exactly as its provider would (any bytes, even garbage)."""
    raw = _bytes(body)
    config = inbox.config
    kind = inbox.channel_type
    content_type = "application/json"
    headers: dict[str, str] = {}
    if kind == "whatsapp_360dialog":
        headers["X-Webhook-Token"] = config["webhook_token"]
    elif kind in ("twilio_sms", "twilio_whatsapp"):
        content_type = "application/x-www-form-urlencoded"
        validator = RequestValidator(config["auth_token"])
        headers["X-Twilio-Signature"] = validator.compute_signature(
            public_url(inbox, query), twilio_params(raw)
        )
    elif kind in ("facebook", "instagram"):
        digest = hmac.new(config["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = "sha256=" + digest
    elif kind == "tiktok":
        t = options.get("t", int(time.time()))
        digest = hmac.new(
            config["client_secret"].encode(), f"{t}.".encode() + raw, hashlib.sha256
        ).hexdigest()
        headers["TikTok-Signature"] = f"t={t},s={digest}"
    elif kind == "bandwidth_sms":
        creds = f"{config['callback_username']}:{config['callback_password']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
    elif kind == "line":
        digest = hmac.new(config["channel_secret"].encode(), raw, hashlib.sha256).digest()
        headers["X-Line-Signature"] = base64.b64encode(digest).decode()
    elif kind == "telegram":
        headers["X-Telegram-Bot-Api-Secret-Token"] = config["secret_token"]
    elif kind == "viber":
        digest = hmac.new(config["auth_token"].encode(), raw, hashlib.sha256).hexdigest()
        headers["X-Viber-Content-Signature"] = digest
    elif kind == "email":
        content_type = "message/rfc822"
        headers["X-Webhook-Token"] = config["webhook_token"]
    # api and web_widget: no scheme exists, nothing can be signed.
    return Signed(raw, content_type, headers, query)


def meta_headers(headers: dict[str, str]) -> dict[str, str]:
    """Real header names → the WSGI environ keys Django's test client takes."""
    out = {}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        out[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return out


def post_raw(client, inbox: Inbox, raw: bytes, *, headers=None, content_type=None, query=""):
    path = inbox.webhook_path + (f"?{query}" if query else "")
    return client.post(
        path,
        raw,
        content_type=content_type or "application/json",
        **meta_headers(headers or {}),
    )


def post_signed(client, inbox: Inbox, body, *, query: str = "", **options):
    signed = sign(inbox, body, query=query, **options)
    return post_raw(
        client,
        inbox,
        signed.body,
        headers=signed.headers,
        content_type=signed.content_type,
        query=query,
    )


def forged(signed: Signed) -> dict[str, str]:
    """The same headers with every credential value altered (same length, same alphabet)."""

    def flip(value: str) -> str:
        # A digit for a digit: hex verifiers compare case-insensitively, so a case flip is no forgery.
        return value[:-1] + ("1" if value[-1] != "1" else "2")

    return {name: flip(value) for name, value in signed.headers.items()}


def assert_refused_and_nothing_changed(response, inbox: Inbox, messages=()):
    assert response.status_code == 403, response.content
    assert not StatusEvent.objects.filter(inbox=inbox, source="webhook").exists()
    assert not Message.objects.filter(inbox=inbox, direction="incoming").exists()
    for message in messages:
        before = (message.status, message.version)
        message.refresh_from_db()
        assert (message.status, message.version) == before
    delivery = WebhookDelivery.objects.filter(inbox=inbox).latest("id")
    assert (delivery.verdict, delivery.http_status) == ("forbidden", 403)


def assert_malformed_kept(response, inbox: Inbox, raw: bytes):
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed"
    delivery = WebhookDelivery.objects.filter(inbox=inbox).latest("id")
    assert (delivery.verdict, delivery.http_status) == ("malformed", 400)
    assert bytes(delivery.body) == raw
    assert not StatusEvent.objects.filter(inbox=inbox, source="webhook").exists()


def assert_entry_skipped(response, inbox: Inbox, raw: bytes, kind: str = "malformed"):
    """A readable body with a bad entry (issue #9): answered 200, the entry recorded on the
    delivery with its reason, nothing of it applied."""
    assert response.status_code == 200, response.content
    delivery = WebhookDelivery.objects.filter(inbox=inbox).latest("id")
    assert delivery.http_status == 200 and bytes(delivery.body) == raw
    assert [note["kind"] for note in delivery.notes] == [kind], delivery.notes
    assert delivery.notes[0]["reason"]
    if kind in ("malformed", "invalid_sender"):
        assert delivery.verdict == "partial"
    return delivery


@pytest.fixture
def provider_inbox(account):
    """``provider_inbox("viber")`` → an inbox of that channel type with realistic secrets."""

    def make(channel_type: str, **overrides) -> Inbox:
        return Inbox.objects.create(
            account=account,
            name=f"{channel_type} inbox",
            channel_type=channel_type,
            config={**CONFIGS[channel_type], **overrides},
        )

    return make


def _fixture(channel_type: str):
    @pytest.fixture
    def inbox_fixture(provider_inbox):
        return provider_inbox(channel_type)

    return inbox_fixture


whatsapp_360dialog_inbox = _fixture("whatsapp_360dialog")
twilio_sms_inbox = _fixture("twilio_sms")
twilio_whatsapp_inbox = _fixture("twilio_whatsapp")
facebook_inbox = _fixture("facebook")
instagram_inbox = _fixture("instagram")
tiktok_inbox = _fixture("tiktok")
bandwidth_inbox = _fixture("bandwidth_sms")
line_inbox = _fixture("line")
telegram_inbox = _fixture("telegram")
viber_inbox = _fixture("viber")
email_inbox = _fixture("email")
api_inbox = _fixture("api")
web_widget_inbox = _fixture("web_widget")


def record_send(message, provider_message_id: str, attempt: int = 1, occurred_at=None):
    """The send response arrives: record it the way the sending pipeline does."""
    from statuses import services
    from statuses.providers.base import SendOutcome, SendResult

    return services.message_record_send_result(
        message_id=message.id,
        attempt=attempt,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id=provider_message_id),
        occurred_at=occurred_at,
    )
