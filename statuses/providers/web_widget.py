"""Tickmark's own web widget (DESIGN §4, §9).

Messages reach the contact's browser over the widget WebSocket, and the widget itself reports
``delivered`` and ``read`` over that socket — there is no provider and no webhook. Sending only
hands the message over: the socket push happens elsewhere, after commit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from statuses.machine import Status
from statuses.providers.base import (
    ConfigSchema,
    ErrorInfo,
    OutgoingMessage,
    ProviderSpec,
    SendOutcome,
    SendResult,
    channel,
    no_handshake,
    parse_nothing,
    refuse_webhook,
)

ERRORS: dict[str, ErrorInfo] = {}


# Widget statuses come over the widget socket: every webhook is refused.
verify = refuse_webhook
handshake = no_handshake
parse = parse_nothing


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Accept at once: our own id is the provider id, and the socket push follows."""
    return SendResult(
        SendOutcome.ACCEPTED, provider_message_id=message.message_id, status=Status.SENT
    )


SPEC = ProviderSpec(
    name="web_widget",
    channels=(channel("web_widget", "WEB", "YYYY", "the widget acks receipt and reports reading"),),
    config=ConfigSchema(required=(), optional=("title", "greeting")),
    kept_headers=frozenset(),
    # The "provider" is our own socket push, keyed by the message id.
    idempotent_send=True,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
