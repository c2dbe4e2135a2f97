"""Instagram messaging, reference §5.

- verify: ``X-Hub-Signature-256`` with the (Instagram) app secret; handshake: ``hub.challenge``.
- parse: the Messenger-platform envelope (``object: "instagram"``). Instagram sends no delivery
  receipts, only ``messaging_seen``: ``read.mid`` names the newest message read, a read
  watermark with ``up_to_provider_message_id`` and no time. The event may come in
  ``messaging[]`` or wrapped as ``changes[].value`` (``field: "messaging_seen"``); a Messenger
  style ``read.watermark`` (ms) is read too. Echoes (``is_echo``) are outgoing messages sent
  from the Instagram app.
- send: ``POST /<version>/<ig_user_id>/messages`` on graph.instagram.com with a Bearer token;
  templates as on Messenger (``MESSAGE_TAG``, default ``HUMAN_AGENT``).
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

CHANNEL_TYPES: tuple[str, ...] = ("instagram",)
DEFAULT_BASE_URL = "https://graph.instagram.com"

ERRORS: dict[str, ErrorInfo] = {
    **_meta.GRAPH_MESSAGING_ERRORS,
    # Instagram's own window subcode (not in the reference; from Meta's Instagram error list).
    "10/2534022": ErrorInfo(
        "Outside the allowed messaging window",
        "More than 24 hours have passed since the person last wrote.",
        "Send a tagged message (template) instead of free text.",
    ),
}


verify = _meta.verify_app_secret
handshake = _meta.handshake_verify_token


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every seen, message and echo event of an Instagram webhook."""
    return _meta.parse_messaging(request)


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a message to an Instagram-scoped user id."""
    missing = _http.missing_config(config, "ig_user_id", "access_token")
    if missing:
        return missing
    version = config.get("api_version") or _meta.DEFAULT_API_VERSION
    base = _http.base_url(config, DEFAULT_BASE_URL)
    return _meta.send_messaging(
        client,
        f"{base}/{version}/{config['ig_user_id']}/messages",
        message,
        catalogue=ERRORS,
        headers={"Authorization": f"Bearer {config['access_token']}"},
    )


SPEC = ProviderSpec(
    name="instagram",
    channel_types=CHANNEL_TYPES,
    config=ConfigSchema(
        required=("ig_user_id", "access_token", "app_secret", "verify_token"),
        optional=("api_version", BASE_URL_KEY),
        secret=frozenset({"access_token", "app_secret", "verify_token"}),
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
