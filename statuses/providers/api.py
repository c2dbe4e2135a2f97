"""The integrator channel (DESIGN §4, §7, §8).

Tickmark posts each outgoing message to the integrator's ``webhook_url``, signed like every
Tickmark webhook (``statuses.signing``). The integrator then reports delivery and reading
through ``POST /api/v1/messages/<id>/status`` — never through the inbox webhook URL, so
``verify()`` refuses everything and ``parse()`` has nothing to read.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from statuses import signing
from statuses.machine import Status
from statuses.providers.base import (
    ErrorInfo,
    HandshakeReply,
    OutgoingMessage,
    ParseResult,
    SendOutcome,
    SendResult,
    WebhookRequest,
)

CHANNEL_TYPES: tuple[str, ...] = ("api",)

ERRORS: dict[str, ErrorInfo] = {
    "400": ErrorInfo(
        "Refused by the integrator",
        "The integrator's endpoint refused the message as invalid.",
        "Read the detail for the integrator's reason.",
    ),
    "401": ErrorInfo(
        "Signature refused by the integrator",
        "The integrator's endpoint did not accept our request's authentication.",
        "Check that the integrator verifies X-Tickmark-Signature with this inbox's HMAC secret.",
    ),
    "403": ErrorInfo(
        "Forbidden by the integrator",
        "The integrator's endpoint refused the message.",
        "Read the detail for the integrator's reason.",
    ),
    "404": ErrorInfo(
        "Webhook URL not found",
        "Nothing answers at the inbox's webhook URL.",
        "Correct the webhook URL in the inbox settings.",
    ),
    "422": ErrorInfo(
        "Refused by the integrator",
        "The integrator's endpoint could not process the message.",
        "Read the detail for the integrator's reason.",
    ),
    "429": ErrorInfo(
        "Integrator is rate-limiting",
        "The integrator's endpoint asked us to slow down.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "500": ErrorInfo(
        "Integrator server error",
        "The integrator's endpoint failed.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "invalid_webhook_url": ErrorInfo(
        "Invalid webhook URL",
        "The inbox's webhook URL is missing or is not an http(s) URL.",
        "Correct the webhook URL in the inbox settings.",
    ),
    "connection_failed": ErrorInfo(
        "Could not reach the integrator",
        "The connection to the webhook URL failed before the message was handed over.",
        "Tickmark retries automatically; check the webhook URL if it persists.",
        permanent=False,
    ),
    "no_response": ErrorInfo(
        "No answer from the integrator",
        "The message was handed over but no answer came, so it may have been received.",
        "Check with the integrator before resending, to avoid a duplicate.",
        permanent=False,
    ),
}


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Refuse every webhook: integrators report statuses through the REST API."""
    return False


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    return ParseResult()


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Post the message to the integrator's webhook URL, signed with the inbox's secret."""
    body = json.dumps(
        {
            "id": message.message_id,
            "to": message.to,
            "content": message.content,
            "template": message.template,
            "correlation_id": message.correlation_id,
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/json",
        signing.HEADER: signing.sign(str(config.get("hmac_secret", "")), body, int(time.time())),
    }
    try:
        response = client.post(str(config.get("webhook_url", "")), content=body, headers=headers)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return SendResult(
            SendOutcome.REJECTED,
            error_code="invalid_webhook_url",
            error_title=ERRORS["invalid_webhook_url"].title,
            error_detail=str(exc),
        )
    except httpx.TransportError as exc:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            code, outcome = "connection_failed", SendOutcome.TRANSIENT
        else:
            code, outcome = "no_response", SendOutcome.UNKNOWN
        return SendResult(
            outcome, error_code=code, error_title=ERRORS[code].title, error_detail=str(exc)
        )

    answer = _response_json(response)
    if response.is_success:
        provider_id = answer.get("id")
        return SendResult(
            SendOutcome.ACCEPTED,
            provider_message_id=str(provider_id) if provider_id else message.message_id,
            status=Status.SENT,
            raw=answer,
        )
    detail = response.text[:500]
    if response.status_code == 429 or response.status_code >= 500:
        code = "429" if response.status_code == 429 else "500"
        return SendResult(
            SendOutcome.TRANSIENT,
            error_code=code,
            error_title=ERRORS[code].title,
            error_detail=detail,
            retry_after=_retry_after_header(response),
            raw=answer,
        )
    code = str(response.status_code)
    info = ERRORS.get(code)
    return SendResult(
        SendOutcome.REJECTED,
        error_code=code,
        error_title=info.title if info else f"Integrator answered HTTP {code}",
        error_detail=detail,
        raw=answer,
    )


def _response_json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
