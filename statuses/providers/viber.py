"""Viber REST Bot API (reference §9).

Callbacks ``delivered``, ``seen`` and ``failed`` name a message by ``message_token``, a 64-bit
integer larger than 2**53: ``json.loads`` keeps it an exact Python int and we only ever ``str()``
it (never through float). ``seen`` is sent once when the user reads their unread messages, so
besides the ``read`` status of that token it is a read watermark for everything sent before.

The ``webhook`` callback Viber sends on ``set_webhook`` is signed like every callback:
``handshake()`` returns None, the view verifies it, and ``parse()`` returns an empty result —
so ``set_webhook`` only succeeds when the inbox's auth token is right.

Viber's send API answers HTTP 200 even on errors; the outcome is the JSON ``status``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
    ConsentChange,
    ErrorInfo,
    HandshakeReply,
    InboundMessage,
    MalformedPayload,
    OutgoingMessage,
    ParseResult,
    ProviderSpec,
    SendOutcome,
    SendResult,
    SkipKind,
    StatusUpdate,
    Watermark,
    WebhookRequest,
    channel,
)

DEFAULT_API_BASE_URL = "https://chatapi.viber.com"
SIGNATURE_HEADER = "x-viber-content-signature"

STATUS_MAP: dict[str, str] = {
    "delivered": Status.DELIVERED,
    "seen": Status.READ,
    "failed": Status.FAILED,
}
# Callbacks that say nothing about an outgoing message.
IGNORED_EVENTS = frozenset({"webhook", "conversation_started", "client_status", "action"})
CONSENT_EVENTS = frozenset({"subscribed", "unsubscribed"})
# Viber user ids: base64-like text ("01234567890A=").
_USER_ID = re.compile(r"[A-Za-z0-9+/=_-]{1,100}")
TOO_MANY_REQUESTS = 12

ERRORS: dict[str, ErrorInfo] = {
    "1": ErrorInfo(
        "Invalid webhook URL",
        "Viber says the webhook URL is not valid (invalidUrl).",
        "Check the public URL Tickmark gives Viber.",
    ),
    "2": ErrorInfo(
        "Auth token rejected",
        "Viber does not accept the bot's auth token (invalidAuthToken).",
        "Copy the current token from the Viber bot settings into the inbox.",
    ),
    "3": ErrorInfo(
        "Bad data",
        "Viber refused the request as invalid (badData).",
        "Read the detail for the field Viber did not accept.",
    ),
    "4": ErrorInfo(
        "Missing data",
        "A required field was missing from the request (missingData).",
        "Check the sender name in the inbox settings and the message text.",
    ),
    "5": ErrorInfo(
        "Receiver not registered",
        "The receiver is not a Viber user (receiverNotRegistered).",
        "Check the contact's Viber id.",
    ),
    "6": ErrorInfo(
        "Receiver not subscribed",
        "The person has not subscribed to the bot, or unsubscribed (receiverNotSubscribed).",
        "The contact must message the bot (or subscribe) before it can write to them.",
    ),
    "7": ErrorInfo(
        "Bot blocked",
        "The bot account is blocked (publicAccountBlocked).",
        "Contact Viber support about the bot account.",
    ),
    "8": ErrorInfo(
        "Bot not found",
        "Viber cannot find the bot account (publicAccountNotFound).",
        "Check the auth token belongs to an existing bot.",
    ),
    "9": ErrorInfo(
        "Bot suspended",
        "The bot account is suspended (publicAccountSuspended).",
        "Contact Viber support about the bot account.",
    ),
    "10": ErrorInfo(
        "Webhook not set",
        "Viber does not send messages for a bot without a webhook (webhookNotSet).",
        "Register Tickmark's webhook URL for the bot with set_webhook.",
    ),
    "11": ErrorInfo(
        "No suitable device",
        "The receiver has no device that can show this message (receiverNoSuitableDevice).",
        "Ask the contact to update Viber, or reach them on another channel.",
    ),
    "12": ErrorInfo(
        "Too many requests",
        "Viber is rate-limiting the bot (tooManyRequests).",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "13": ErrorInfo(
        "API version not supported",
        "The receiver's Viber version does not support this message (apiVersionNotSupported).",
        "Ask the contact to update Viber.",
    ),
    "delivery_failed": ErrorInfo(
        "Viber could not deliver the message",
        "Viber reported the message as failed on the contact's side.",
        "Read the detail for Viber's description.",
    ),
    "http_error": ErrorInfo(
        "Unexpected answer from Viber",
        "Viber answered with an HTTP error instead of its usual status object.",
        "Read the detail; check the API base URL and auth token.",
    ),
    **_http.transport_errors("Viber"),
}
_TRANSPORT = _http.TransportPolicy(catalogue=ERRORS, detail=_http.exception_name)


def signature(auth_token: str, body: bytes) -> str:
    """Return the ``X-Viber-Content-Signature`` Viber computes for ``body``."""
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check the hex HMAC-SHA256 of the raw body under the bot's auth token."""
    token = config.get("auth_token") or ""
    supplied = request.headers.get(SIGNATURE_HEADER)
    if not token or not supplied:
        return False
    expected = signature(str(token), request.body).encode()
    return hmac.compare_digest(expected, supplied.strip().lower().encode("utf-8", "replace"))


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """Return None: the signed ``webhook`` callback is verified and parsed to nothing."""
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Turn one Viber callback into statuses, a read watermark or an inbound message."""
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("a callback must be a JSON object")
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedPayload("callback without event")

    result = ParseResult()
    if event in CONSENT_EVENTS:
        with result.entry(data, event) as part:
            part.consents.append(_consent(event, data, request))
        return result
    if event in IGNORED_EVENTS:
        if event != "webhook":  # the set_webhook check is a handshake, not an event
            result.skip(SkipKind.IGNORED, f"{event}: nothing to apply", data)
        return result
    with result.entry(data, event) as part:
        _callback(event, data, request, part)
    return result


def _callback(
    event: str, data: dict[str, Any], request: WebhookRequest, result: ParseResult
) -> None:
    occurred_at = _from_ms(data.get("timestamp"), request.received_at)
    if event == "message":
        inbound = _inbound(data, occurred_at)
        if _USER_ID.fullmatch(inbound.contact_address.replace("\x00", "")):
            result.inbound.append(inbound)
        else:
            result.skip(
                SkipKind.INVALID_SENDER,
                f"sender.id {inbound.contact_address!r} is not a Viber user id",
                data,
            )
        return
    if "message_token" not in data:
        # An event we do not know, about no message of ours.
        result.skip(SkipKind.IGNORED, f"{event}: unknown event without a message", data)
        return

    token = _token(data.get("message_token"))
    user_id = str(data.get("user_id") or "")
    dedupe_key = f"{token}:{event}:{user_id}"
    status = STATUS_MAP.get(event, UNRECOGNIZED)
    failed = status == Status.FAILED
    result.statuses.append(
        StatusUpdate(
            provider_message_id=token,
            status=status,
            raw_status=event,
            occurred_at=occurred_at,
            dedupe_key=dedupe_key,
            error_code="delivery_failed" if failed else "",
            error_title=ERRORS["delivery_failed"].title if failed else "",
            error_detail=str(data.get("desc") or "") if failed else "",
            recipient=user_id,
            raw=data,
        )
    )
    if event == "seen" and user_id:
        result.watermarks.append(
            Watermark(
                contact_address=user_id,
                status=Status.READ,
                up_to=occurred_at,
                occurred_at=occurred_at,
                dedupe_key=f"{dedupe_key}:watermark",
                raw_status=event,
                up_to_provider_message_id=token,
            )
        )


def _consent(event: str, data: dict[str, Any], request: WebhookRequest) -> ConsentChange:
    """``unsubscribed`` names the user by ``user_id``; ``subscribed`` by ``user.id``. Viber
    gives each callback a ``message_token``, so a redelivery records one change."""
    user = data.get("user")
    user_id = data.get("user_id") if event == "unsubscribed" else None
    if user_id is None and isinstance(user, dict):
        user_id = user.get("id")
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        raise MalformedPayload(f"{event} callback without a Viber user id")
    token = data.get("message_token")
    occurred_at = _from_ms(data.get("timestamp"), request.received_at)
    key = _token(token) if token is not None else f"{occurred_at.timestamp():.3f}"
    return ConsentChange(
        contact_address=user_id,
        opted_out=event == "unsubscribed",
        source="provider_event",
        detail=event,
        occurred_at=occurred_at,
        dedupe_key=f"viber:{event}:{key}",
    )


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a text message with ``/pa/send_message``; ``status: 0`` means accepted."""
    base = _http.base_url(config, DEFAULT_API_BASE_URL)
    payload = {
        "receiver": message.to,
        "type": "text",
        "sender": {"name": config.get("sender_name", "")},
        "text": message.content,
    }
    headers = {"X-Viber-Auth-Token": str(config.get("auth_token", ""))}
    outcome = _http.exchange(
        client, "POST", f"{base}/pa/send_message", policy=_TRANSPORT, json=payload, headers=headers
    )
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response, keep_other=False)
    status = body.get("status")
    if _http.is_busy(response):
        busy_code = str(TOO_MANY_REQUESTS) if response.status_code == 429 else "http_error"
        return _http.refused(
            response, body, busy_code, "Viber is busy", f"HTTP {response.status_code}"
        )
    if response.is_success and status == 0 and body.get("message_token") is not None:
        return SendResult(
            SendOutcome.ACCEPTED,
            provider_message_id=_token(body["message_token"]),
            status=Status.SENT,
            raw=body,
        )
    if not response.is_success or not isinstance(status, int) or isinstance(status, bool):
        return _http.unexpected_answer(response, body, ERRORS)
    code = str(status)
    info = ERRORS.get(code)
    return SendResult(
        SendOutcome.TRANSIENT if status == TOO_MANY_REQUESTS else SendOutcome.REJECTED,
        error_code=code,
        error_title=info.title if info else f"Viber error {code}",
        error_detail=str(body.get("status_message") or ""),
        raw=body,
        rate_limited=status == TOO_MANY_REQUESTS,
    )


def _token(value: Any) -> str:
    # An int from json.loads is exact however large; a float would already have lost digits.
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise MalformedPayload("message_token must be an integer")
    return str(value)


def _inbound(data: dict[str, Any], occurred_at: datetime) -> InboundMessage:
    sender = data.get("sender")
    message = data.get("message")
    if not isinstance(sender, dict) or not sender.get("id") or not isinstance(message, dict):
        raise MalformedPayload("message callback without sender.id or message")
    kind = message.get("type")
    content = message.get("text", "") if kind == "text" else f"[{kind}]"
    return InboundMessage(
        contact_address=str(sender["id"]),
        provider_message_id=_token(data.get("message_token")),
        content=str(content),
        occurred_at=occurred_at,
        contact_name=str(sender.get("name") or ""),
    )


def _from_ms(value: Any, default: datetime) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedPayload("timestamp out of range") from exc
    return default


SPEC = ProviderSpec(
    name="viber",
    channels=(channel("viber", "VIBER", "YYYY", "Viber callbacks delivered/seen/failed"),),
    config=ConfigSchema(
        required=("auth_token", "sender_name"),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"auth_token"}),
    ),
    kept_headers=frozenset({SIGNATURE_HEADER}),
    idempotent_send=False,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
