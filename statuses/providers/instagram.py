"""Instagram messaging, reference §5.

- verify: ``X-Hub-Signature-256`` with the (Instagram) app secret; handshake: ``hub.challenge``.
- parse: the Messenger-platform envelope (``object: "instagram"``). Instagram sends no delivery
  receipts, only ``messaging_seen``: ``read.mid`` names the newest message read, a read
  watermark with ``up_to_provider_message_id`` and no time. The event may come in
  ``messaging[]`` or wrapped as ``changes[].value`` (``field: "messaging_seen"``); a Messenger
  style ``read.watermark`` (ms) is read too. Echoes (``is_echo``) are outgoing messages sent
  from the Instagram app.
- send: ``POST /<version>/<ig_user_id>/messages`` on graph.instagram.com with a Bearer token;
  templates as on Messenger (``MESSAGE_TAG``, default ``HUMAN_AGENT``); the read receipt is
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

DEFAULT_BASE_URL = "https://graph.instagram.com"

ERRORS: dict[str, ErrorInfo] = {
    **meta_errors.GRAPH_MESSAGING_ERRORS,
    # Instagram's own window subcode (not in the reference; from Meta's Instagram error list).
    "10/2534022": ErrorInfo(
        "Outside the allowed messaging window",
        "More than 24 hours have passed since the person last wrote.",
        "Send a tagged message (template) instead of free text.",
    ),
}


verify = meta_verify.verify_app_secret
handshake = meta_verify.handshake_verify_token


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every seen, message and echo event of an Instagram webhook."""
    return meta_parse_messaging.parse_messaging(request)


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a message to an Instagram-scoped user id."""
    missing = _http.missing_config(config, "ig_user_id", "access_token")
    if missing:
        return missing
    version = config.get("api_version") or meta_send.DEFAULT_API_VERSION
    base = _http.base_url(config, DEFAULT_BASE_URL)
    return meta_send.send(
        meta_send.MESSAGING,
        client,
        f"{base}/{version}/{config['ig_user_id']}/messages",
        message,
        catalogue=ERRORS,
        headers={"Authorization": f"Bearer {config['access_token']}"},
    )


def mark_read(client: httpx.Client, config: dict[str, Any], mark: ReadMark) -> SendResult:
    """Mark the person's thread seen (``sender_action: mark_seen``)."""
    missing = _http.missing_config(config, "ig_user_id", "access_token")
    if missing:
        return missing
    version = config.get("api_version") or meta_send.DEFAULT_API_VERSION
    base = _http.base_url(config, DEFAULT_BASE_URL)
    return meta_send.mark_read(
        meta_send.MESSAGING,
        client,
        f"{base}/{version}/{config['ig_user_id']}/messages",
        mark,
        catalogue=ERRORS,
        headers={"Authorization": f"Bearer {config['access_token']}"},
    )


SPEC = ProviderSpec(
    name="instagram",
    channels=(
        channel(
            "instagram", "INSTAGRAM", "YNYY", "read of a mid (watermark)", has_service_window=True
        ),
    ),
    config=ConfigSchema(
        required=("ig_user_id", "access_token", "app_secret", "verify_token"),
        optional=("api_version", BASE_URL_KEY),
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
