"""Facebook Messenger, reference §4.

- verify: ``X-Hub-Signature-256`` with the app secret; handshake: ``hub.challenge``.
- parse: ``entry[].messaging[]``. ``delivery`` → a delivered watermark (everything sent before
  ``watermark``) plus a delivered status for each listed ``mid``; ``read`` → a read watermark.
  Watermarks are Unix **milliseconds**. ``message`` → inbound, or an echo (``is_echo``) of a
  message the Page sent from another tool. Watermark dedupe key
  ``<page_id>:<psid>:<delivery|read>:<watermark>``.
- send: Send API ``POST /<version>/me/messages`` with the Page token. Free text goes as
  ``RESPONSE`` (the 24-hour window); a template goes as ``MESSAGE_TAG`` with
  ``template["tag"]`` (default ``HUMAN_AGENT``) and ``template["text"]``, or a structured
  Messenger template when ``template["payload"]`` is given. The response has only
  ``message_id``; failures are synchronous Graph errors, never a webhook. The read receipt is
  the sender action ``mark_seen`` on the same endpoint.
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
from statuses.providers.meta import parse_messaging as meta_parse_messaging
from statuses.providers.meta import send as meta_send
from statuses.providers.meta import verify as meta_verify

ERRORS: dict[str, ErrorInfo] = meta_errors.GRAPH_MESSAGING_ERRORS
DEFAULT_BASE_URL = "https://graph.facebook.com"


verify = meta_verify.verify_app_secret
handshake = meta_verify.handshake_verify_token


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every delivery, read and message event of a Messenger webhook."""
    return meta_parse_messaging.parse_messaging(request)


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a message to a PSID through the Send API."""
    missing = _http.missing_config(config, "page_access_token")
    if missing:
        return missing
    version = config.get("api_version") or meta_send.DEFAULT_API_VERSION
    return meta_send.send(
        meta_send.MESSAGING,
        client,
        f"{_http.base_url(config, DEFAULT_BASE_URL)}/{version}/me/messages",
        message,
        catalogue=ERRORS,
        params={"access_token": str(config["page_access_token"])},
    )


def mark_read(client: httpx.Client, config: dict[str, Any], mark: ReadMark) -> SendResult:
    """Mark the person's thread seen (``sender_action: mark_seen``) through the Send API."""
    missing = _http.missing_config(config, "page_access_token")
    if missing:
        return missing
    version = config.get("api_version") or meta_send.DEFAULT_API_VERSION
    return meta_send.mark_read(
        meta_send.MESSAGING,
        client,
        f"{_http.base_url(config, DEFAULT_BASE_URL)}/{version}/me/messages",
        mark,
        catalogue=ERRORS,
        params={"access_token": str(config["page_access_token"])},
    )


SPEC = ProviderSpec(
    name="facebook",
    channels=(
        channel(
            "facebook", "FACEBOOK", "YYYY", "delivery/read watermarks", has_service_window=True
        ),
    ),
    config=ConfigSchema(
        required=("page_id", "page_access_token", "app_secret", "verify_token"),
        optional=("api_version", BASE_URL_KEY),
        secret=frozenset({"page_access_token", "app_secret", "verify_token"}),
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
