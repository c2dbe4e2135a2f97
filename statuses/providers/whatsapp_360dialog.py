"""WhatsApp through 360dialog, reference §2.

360dialog relays Meta's Cloud API webhook JSON unchanged, so parsing is Meta's (plus the legacy
On-Premise shape, top-level ``statuses[]``, which the shared parser also reads). 360dialog does
not forward a signature we can check (we do not hold the app secret), so the webhook is
authenticated by the custom ``X-Webhook-Token`` header configured with the webhook URL. There is
no handshake. Sending: ``POST /messages`` on ``waba-v2.360dialog.io`` with ``D360-API-KEY``; the
read receipt is Meta's ``{"status": "read", "message_id": …}`` on the same endpoint.
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
    HandshakeReply,
    OutgoingMessage,
    ParseResult,
    ProviderSpec,
    ReadMark,
    SendResult,
    WebhookRequest,
    channel,
    tokens_equal,
)
from statuses.providers.meta import errors as meta_errors
from statuses.providers.meta import parse_whatsapp as meta_parse_whatsapp
from statuses.providers.meta import send as meta_send

DEFAULT_BASE_URL = "https://waba-v2.360dialog.io"
TOKEN_HEADER = "x-webhook-token"

ERRORS: dict[str, ErrorInfo] = {
    **meta_errors.WHATSAPP_ERRORS,
    # Legacy On-Premise codes (reference §2.2), still found in old histories.
    "470": ErrorInfo(
        "Outside the customer service window",
        "More than 24 hours have passed since the contact last wrote: only templates may be sent.",
        "Send an approved template instead of free text.",
    ),
    "471": ErrorInfo(
        "Spam rate limit hit",
        "Too many of this business's messages were blocked or reported.",
        "Slow down and review message quality.",
        permanent=False,
    ),
    "472": ErrorInfo(
        "Contact is part of an experiment",
        "Meta held back this marketing template because the number is in an experiment.",
        "Do not resend: it would fail the same way.",
    ),
    "1013": ErrorInfo(
        "User is not valid",
        "The number is not a valid WhatsApp user.",
        "Check the number with the contact.",
    ),
    "1026": ErrorInfo(
        "Receiver incapable",
        "The contact cannot receive this message (outdated app or not on WhatsApp).",
        "Check the number with the contact; resending will not help.",
    ),
}


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Compare the configured webhook token header in constant time."""
    return tokens_equal(request.headers.get(TOKEN_HEADER), config.get("webhook_token"))


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """Return None: 360dialog confirms webhook URLs out of band."""
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every status and inbound message of a relayed Cloud API webhook."""
    return meta_parse_whatsapp.parse_whatsapp(request, ERRORS)


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a text or template message through 360dialog's Cloud API proxy."""
    missing = _http.missing_config(config, "api_key")
    if missing:
        return missing
    return meta_send.send(
        meta_send.WHATSAPP,
        client,
        f"{_http.base_url(config, DEFAULT_BASE_URL)}/messages",
        message,
        catalogue=ERRORS,
        headers={"D360-API-KEY": str(config["api_key"])},
    )


def mark_read(client: httpx.Client, config: dict[str, Any], mark: ReadMark) -> SendResult:
    """Mark the conversation read up to ``mark``: Meta's call, on 360dialog's ``/messages``."""
    missing = _http.missing_config(config, "api_key")
    if missing:
        return missing
    return meta_send.mark_read(
        meta_send.WHATSAPP,
        client,
        f"{_http.base_url(config, DEFAULT_BASE_URL)}/messages",
        mark,
        catalogue=ERRORS,
        headers={"D360-API-KEY": str(config["api_key"])},
    )


SPEC = ProviderSpec(
    name="whatsapp_360dialog",
    channels=(
        channel(
            "whatsapp_360dialog",
            "WHATSAPP",
            "YYYY",
            "Meta-format webhook via 360dialog",
            has_service_window=True,
            time_to_live=timedelta(days=30),
        ),
    ),
    config=ConfigSchema(
        required=("api_key", "webhook_token"),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"api_key", "webhook_token"}),
    ),
    # The only proof is the token header, a credential: nothing provider-specific to keep.
    kept_headers=frozenset(),
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
