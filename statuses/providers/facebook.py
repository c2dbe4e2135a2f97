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
  ``message_id``; failures are synchronous Graph errors, never a webhook.
"""

from __future__ import annotations

from typing import Any

import httpx

from statuses.providers import _http, _meta
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
    ErrorInfo,
    OutgoingMessage,
    ParseResult,
    ProviderSpec,
    SendResult,
    WebhookRequest,
)

CHANNEL_TYPES: tuple[str, ...] = ("facebook",)
ERRORS: dict[str, ErrorInfo] = _meta.GRAPH_MESSAGING_ERRORS
DEFAULT_BASE_URL = "https://graph.facebook.com"


verify = _meta.verify_app_secret
handshake = _meta.handshake_verify_token


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every delivery, read and message event of a Messenger webhook."""
    return _meta.parse_messaging(request)


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a message to a PSID through the Send API."""
    missing = _http.missing_config(config, "page_access_token")
    if missing:
        return missing
    version = config.get("api_version") or _meta.DEFAULT_API_VERSION
    return _meta.send_messaging(
        client,
        f"{_http.base_url(config, DEFAULT_BASE_URL)}/{version}/me/messages",
        message,
        catalogue=ERRORS,
        params={"access_token": str(config["page_access_token"])},
    )


SPEC = ProviderSpec(
    name="facebook",
    channel_types=CHANNEL_TYPES,
    config=ConfigSchema(
        required=("page_id", "page_access_token", "app_secret", "verify_token"),
        optional=("api_version", BASE_URL_KEY),
        secret=frozenset({"page_access_token", "app_secret", "verify_token"}),
    ),
    kept_headers=frozenset({_meta.SIGNATURE_HEADER}),
    idempotent_send=False,
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
