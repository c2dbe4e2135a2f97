"""WhatsApp Cloud API (Meta), reference §1.

- verify: ``X-Hub-Signature-256`` with the app secret; handshake: ``hub.challenge``.
- parse: ``entry[].changes[].value.statuses[]`` (sent, delivered, read, played → read, failed;
  anything else is kept as UNRECOGNIZED) and inbound ``messages[]``; every item of a batch.
  Dedupe key ``<wamid>:<status>`` (``:<participant>`` for group messages); our correlation id
  comes back in ``biz_opaque_callback_data``.
- send: ``POST /<version>/<phone_number_id>/messages`` with a Bearer token; the read receipt
  (``mark_read``) is the same endpoint with ``{"status": "read", "message_id": …}``.

Group messages: each participant's status is its own event, so a group message shows the
furthest any participant got (delivered once one participant has it, read once one has read
it). A per-participant ``failed`` is kept with its error but changes nothing: it does not mean
the message failed for the others, and showing it failed would invite a resend to everyone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
    ErrorInfo,
    OutgoingMessage,
    ParseResult,
    ProviderSpec,
    ReadMark,
    SendResult,
    WebhookRequest,
    channel,
)
from statuses.providers.meta import errors as meta_errors
from statuses.providers.meta import parse_whatsapp as meta_parse_whatsapp
from statuses.providers.meta import send as meta_send
from statuses.providers.meta import verify as meta_verify

ERRORS: dict[str, ErrorInfo] = meta_errors.WHATSAPP_ERRORS
DEFAULT_BASE_URL = "https://graph.facebook.com"


verify = meta_verify.verify_app_secret
handshake = meta_verify.handshake_verify_token


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every status and inbound message of a Cloud API webhook."""
    return meta_parse_whatsapp.parse_whatsapp(request, ERRORS)


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a text or template message through the Cloud API."""
    missing = _http.missing_config(config, "phone_number_id", "access_token")
    if missing:
        return missing
    return meta_send.send(
        meta_send.WHATSAPP,
        client,
        _messages_url(config),
        message,
        catalogue=ERRORS,
        headers={"Authorization": f"Bearer {config['access_token']}"},
    )


def mark_read(client: httpx.Client, config: dict[str, Any], mark: ReadMark) -> SendResult:
    """Mark the conversation read up to ``mark`` (the contact sees blue ticks)."""
    missing = _http.missing_config(config, "phone_number_id", "access_token")
    if missing:
        return missing
    return meta_send.mark_read(
        meta_send.WHATSAPP,
        client,
        _messages_url(config),
        mark,
        catalogue=ERRORS,
        headers={"Authorization": f"Bearer {config['access_token']}"},
    )


def _messages_url(config: dict[str, Any]) -> str:
    version = config.get("api_version") or meta_send.DEFAULT_API_VERSION
    base = _http.base_url(config, DEFAULT_BASE_URL)
    return f"{base}/{version}/{config['phone_number_id']}/messages"


SPEC = ProviderSpec(
    name="whatsapp_cloud",
    channels=(
        channel(
            "whatsapp_cloud",
            "WHATSAPP",
            "YYYY",
            "Meta webhook statuses[]",
            has_service_window=True,
            time_to_live=timedelta(days=30),
        ),
    ),
    config=ConfigSchema(
        required=("phone_number_id", "access_token", "app_secret", "verify_token"),
        optional=("api_version", "waba_id", BASE_URL_KEY),
        secret=frozenset({"access_token", "app_secret", "verify_token"}),
    ),
    kept_headers=frozenset({meta_verify.SIGNATURE_HEADER}),
    idempotent_send=False,
    webhook_retry_window=timedelta(days=7),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
    mark_read=mark_read,
)
