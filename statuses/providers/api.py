"""The integrator channel (DESIGN §4, §7, §8).

Tickmark posts each outgoing message to the integrator's ``webhook_url``, signed like every
Tickmark webhook (``statuses.signing``). The integrator then reports delivery and reading
through ``POST /api/v1/messages/<id>/status`` — never through the inbox webhook URL, so
``verify()`` refuses everything and ``parse()`` has nothing to read.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx

from statuses import signing
from statuses.machine import Status
from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
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
    **_http.transport_errors(
        "the integrator",
        reach="the webhook URL",
        connect_hint="Tickmark retries automatically; check the webhook URL if it persists.",
        lost_answer="The message was handed over but no answer came, so it may have been received.",
        lost_answer_hint="Check with the integrator before resending, to avoid a duplicate.",
    ),
}
# A webhook URL that is not an http(s) URL cannot be fixed by retrying.
_TRANSPORT = _http.TransportPolicy(
    catalogue=ERRORS,
    unusable=(httpx.InvalidURL, httpx.UnsupportedProtocol),
    unusable_code="invalid_webhook_url",
    detail=str,
)


# Integrators report statuses through the REST API: every webhook is refused.
verify = refuse_webhook
handshake = no_handshake
parse = parse_nothing


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
    outcome = _http.exchange(
        client,
        "POST",
        str(config.get("webhook_url", "")),
        policy=_TRANSPORT,
        content=body,
        headers=headers,
    )
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    answer = _http.response_json(response, keep_other=False)
    if response.is_success:
        provider_id = answer.get("id")
        return SendResult(
            SendOutcome.ACCEPTED,
            provider_message_id=str(provider_id) if provider_id else message.message_id,
            status=Status.SENT,
            raw=answer,
        )
    code, title = _http.status_error(
        response, ERRORS, f"Integrator answered HTTP {response.status_code}"
    )
    return _http.refused(response, answer, code, title, _error_text(answer, response))


def _error_text(answer: dict[str, Any], response: httpx.Response) -> str:
    """The integrator's JSON ``error`` (a string, or an object's ``message``), at most 200
    characters; otherwise just the status. Never the raw body (issue #10)."""
    error = answer.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and error.strip():
        return error.strip()[:200]
    return f"HTTP {response.status_code}"


SPEC = ProviderSpec(
    name="api",
    channels=(channel("api", "API", "YYYY", "integrator reports via REST"),),
    config=ConfigSchema(
        required=("webhook_url", "hmac_secret"),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"hmac_secret"}),
    ),
    kept_headers=frozenset(),
    # A repeat would post the same message id to the integrator twice: it is not ours to dedupe.
    idempotent_send=False,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
