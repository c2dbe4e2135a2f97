"""Large bodies and machine-readable errors (DESIGN §5.1, issue #9 item 3).

Webhook bodies up to ``TICKMARK_WEBHOOK_MAX_BYTES`` (20 MB) are accepted — a bounce carries the
original mail; above that a JSON 413, recorded (size and verdict, not the body). API bodies keep
Django's smaller limit, answered in JSON too. Nothing under ``/webhooks/`` or ``/api/`` answers
with an HTML page: not an unknown path, not a CSRF refusal, not a crash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from django.conf import settings
from django.test import Client, override_settings

from statuses import correlation
from statuses.machine import Status
from statuses.models import WebhookDelivery
from statuses.providers import email as email_provider
from tests.webhooks.conftest import CONTACTS, post_raw, post_signed, record_send, sign

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == {"error"} and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body


def bounce_with_original(message_id: str, attachment: bytes) -> bytes:
    """An RFC 3464 delivery status notification returning the whole original mail (RFC 3462
    ``message/rfc822`` part), attachment and all — as Postfix does by default."""
    encoded = base64.encodebytes(attachment).decode()
    return (
        "Return-Path: <>\r\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        "To: support@acme.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Sun, 29 Nov 2026 18:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="outer"\r\n'
        "\r\n"
        "--outer\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "Your message could not be delivered to one or more recipients.\r\n"
        "--outer\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {CONTACTS['email']}\r\n"
        "Action: failed\r\n"
        "Status: 5.2.2\r\n"
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"
        "\r\n"
        "--outer\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "From: Acme Support <support@acme.example>\r\n"
        f"To: {CONTACTS['email']}\r\n"
        "Subject: Your scanned contract\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="inner"\r\n'
        "\r\n"
        "--inner\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Please find the contract attached.\r\n"
        "--inner\r\n"
        'Content-Type: application/pdf; name="contract.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{encoded}"
        "--inner--\r\n"
        "\r\n"
        "--outer--\r\n"
    ).encode()


# --- webhook bodies ---------------------------------------------------------------------------


def test_the_default_webhook_limit_is_20_mb():
    assert settings.TICKMARK_WEBHOOK_MAX_BYTES == 20 * MB


def test_a_bounce_of_6_mb_is_accepted_and_applied(client, email_inbox, make_message):
    message = make_message(email_inbox, to=CONTACTS["email"])
    record_send(message, email_provider.message_id_for(correlation.make(message.id, 1)))
    message.refresh_from_db()
    raw = bounce_with_original(message.provider_message_id, bytes(range(256)) * (18 * 1024))
    assert 6 * MB < len(raw) < 20 * MB  # well over Django's 2.5 MB default

    response = post_signed(client, email_inbox, raw)

    assert response.status_code == 200, response.content[:300]
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "5.2.2")
    delivery = WebhookDelivery.objects.get(inbox=email_inbox)
    assert (delivery.verdict, len(bytes(delivery.body))) == ("accepted", len(raw))


def test_a_signed_whatsapp_body_just_under_20_mb_is_accepted(client, inbox):
    body = {"object": "whatsapp_business_account", "entry": [], "padding": ""}
    overhead = len(json.dumps(body).encode())
    body["padding"] = "x" * (20 * MB - overhead)
    raw = json.dumps(body).encode()
    assert len(raw) == 20 * MB
    signature = "sha256=" + hmac.new(b"test_app_secret", raw, hashlib.sha256).hexdigest()

    response = client.post(
        inbox.webhook_path, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )

    assert response.status_code == 200, response.content[:300]
    assert WebhookDelivery.objects.get(inbox=inbox).verdict == "accepted"


def test_over_20_mb_is_a_json_413_recorded_without_the_body(client, email_inbox):
    raw = b"X" * (20 * MB + 1)
    signed = sign(email_inbox, raw)

    response = post_raw(
        client, email_inbox, raw, headers=signed.headers, content_type=signed.content_type
    )

    assert_json_error(response, 413, "payload_too_large")
    delivery = WebhookDelivery.objects.get(inbox=email_inbox)
    assert (delivery.verdict, delivery.http_status) == ("too_large", 413)
    assert bytes(delivery.body) == b""
    assert "20,971,521 bytes" in delivery.detail and "20,971,520" in delivery.detail
    assert "x-webhook-token" not in delivery.headers  # a credential is never kept
    assert delivery.headers["content-length"] == str(20 * MB + 1)


@override_settings(TICKMARK_WEBHOOK_MAX_BYTES=4096)
def test_the_webhook_limit_is_a_setting(client, provider_inbox):
    viber = provider_inbox("viber")
    small = {"event": "delivered", "timestamp": 1767225600000, "message_token": 1, "pad": ""}
    big = {**small, "pad": "y" * 5000}
    assert post_signed(client, viber, small).status_code == 200
    assert_json_error(post_signed(client, viber, big), 413, "payload_too_large")
    verdicts = list(
        WebhookDelivery.objects.filter(inbox=viber).order_by("id").values_list("verdict", flat=True)
    )
    assert verdicts == ["accepted", "too_large"]


def test_too_large_for_an_unknown_inbox_is_recorded_without_one(client):
    path = f"/webhooks/viber/{uuid.uuid4()}/"
    with override_settings(TICKMARK_WEBHOOK_MAX_BYTES=10):
        response = client.post(path, b"{" + b" " * 20 + b"}", content_type="application/json")
    assert_json_error(response, 413, "payload_too_large")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.inbox_id, delivery.channel_type, delivery.path) == (None, "viber", path)


# --- API bodies -------------------------------------------------------------------------------


def test_an_api_body_over_the_api_limit_is_a_json_413(client, account):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = json.dumps({"to": "+15550001111", "content": "z" * limit}).encode()
    response = client.post(
        "/api/v1/messages", raw, content_type="application/json", HTTP_AUTHORIZATION="Bearer x"
    )
    assert_json_error(response, 413, "payload_too_large")


def test_django_refusing_a_body_as_too_big_is_a_json_413_under_api(rf):
    # Django's own check (request.body over DATA_UPLOAD_MAX_MEMORY_SIZE, e.g. a chunked body
    # with no Content-Length) raises RequestDataTooBig, which Django turns into handler400.
    from django.core.exceptions import RequestDataTooBig

    from config import errors

    response = errors.bad_request(rf.post("/api/v1/messages"), RequestDataTooBig())
    assert_json_error(response, 413, "payload_too_large")
    assert_json_error(errors.bad_request(rf.post("/webhooks/x/")), 400, "bad_request")


# --- never HTML -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/whatsapp_cloud/not-a-uuid/",
        "/webhooks/whatsapp_cloud/",
        "/webhooks/nope",
        "/webhooks/",
    ],
)
def test_unroutable_webhook_urls_are_json_404s(client, path):
    assert_json_error(client.post(path, b"{}", content_type="application/json"), 404)
    assert_json_error(client.get(path), 404)


def test_a_post_to_an_api_path_that_does_not_exist_is_a_json_404_not_a_csrf_403():
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/api/v1/nothing/here", b"{}", content_type="application/json")
    assert_json_error(response, 404, "not_found")
    assert_json_error(browser.post("/api/nothing"), 404, "not_found")


def test_a_csrf_refusal_under_api_is_json(rf):
    from config import errors

    assert_json_error(errors.csrf_failure(rf.post("/api/v1/messages")), 403, "csrf_failed")
    page = errors.csrf_failure(rf.post("/login/"), reason="CSRF cookie not set.")
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


def test_a_crash_in_the_webhook_view_is_a_json_500(inbox, monkeypatch):
    from statuses import ingestion

    def crash(items, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingestion, "webhooks_receive", crash)
    client = Client(raise_request_exception=False)
    raw = b'{"object":"whatsapp_business_account","entry":[]}'
    response = client.post(inbox.webhook_path, raw, content_type="application/json")
    assert_json_error(response, 500, "server_error")


def test_a_crash_in_an_api_view_is_a_json_500(account, monkeypatch):
    from inbox.api import views
    from inbox.models import ApiKey

    raw_key = ApiKey.generate()
    key = ApiKey(account=account, name="ci")
    key.set_key(raw_key)
    key.save()

    def crash(self, request, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.InboxListView, "get", crash)
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/inboxes", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert_json_error(response, 500, "server_error")


def test_the_agent_ui_keeps_django_pages(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
