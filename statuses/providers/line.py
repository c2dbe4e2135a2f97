"""LINE Messaging API (reference §6).

LINE has no delivery or read webhooks for ordinary messages: the push API's 200 is the only
signal, and DESIGN §4 counts it as ``delivered`` (optimistically). Webhooks only bring the
contact's messages.

Decisions:
* The console's "Verify" button posts a *signed* body with ``events: []``. ``handshake()``
  returns None and the view verifies as usual; ``parse()`` then returns an empty result, so the
  answer is 200 only when the channel secret is right — a wrong secret shows up at setup time.
* Every push carries ``X-Line-Retry-Key``, a UUID derived from the correlation id (which names
  the message and the attempt). LINE accepts a key once and answers 409 to a repeat, so a push
  whose answer was lost is safe to repeat: a timeout is reported as TRANSIENT, not UNKNOWN,
  and the retry's 409 is read as "already accepted".
* ``source.userId`` is the contact for one-to-one chats; for groups and rooms the contact is the
  group/room id, because that is where a reply must be pushed.
* Redelivered events keep their ``webhookEventId``; the inbound message id (``message.id``) is
  just as stable and is what inbound dedupe uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from statuses.machine import Status
from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
    Deletion,
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
    WebhookRequest,
    channel,
)

DEFAULT_API_BASE_URL = "https://api.line.me"
SIGNATURE_HEADER = "x-line-signature"
# LINE ids: "U" (user), "C" (group) or "R" (room) and (in practice 32) hex digits.
_LINE_ID = re.compile(r"[UCR][0-9A-Za-z]{1,64}")
# Retry keys are UUIDv5 in this namespace, so equal correlation ids give equal keys.
RETRY_KEY_NAMESPACE = uuid.UUID("6f1d2c8e-3b7a-5e4f-9c1d-2a8b7e6f5d4c")

ERRORS: dict[str, ErrorInfo] = {
    "400": ErrorInfo(
        "Bad request",
        "LINE refused the message as invalid, e.g. an unknown user id in `to` or a text that is "
        "empty or longer than 5000 characters.",
        "Read the detail: LINE names the property it did not accept.",
    ),
    "401": ErrorInfo(
        "Channel access token rejected",
        "LINE does not accept the channel access token configured for this inbox.",
        "Issue a new channel access token in the LINE Developers console and save it here.",
    ),
    "403": ErrorInfo(
        "Not allowed",
        "The channel is not allowed to use this API (plan or permission).",
        "Check the channel's plan and permissions in the LINE Developers console.",
    ),
    "409": ErrorInfo(
        "Already accepted",
        "A push with the same retry key was already accepted.",
        "Nothing to do: the message went out with the earlier request.",
        permanent=False,
    ),
    "413": ErrorInfo(
        "Message too large",
        "The request exceeded LINE's size limit.",
        "Shorten the message.",
    ),
    "429": ErrorInfo(
        "Too many requests",
        "LINE is rate-limiting the channel, or the monthly message quota is used up.",
        "Tickmark retries automatically; if it persists, check the channel's message quota.",
        permanent=False,
    ),
    "500": ErrorInfo(
        "LINE server error",
        "LINE had an internal problem.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    **_http.transport_errors(
        "LINE",
        lost_answer="LINE's answer never came; the retry key makes a retry safe.",
        lost_answer_hint=_http.RETRIES,
    ),
}
# Connection refused, or the answer was lost: either way the retry key makes a repeat
# harmless, so both are TRANSIENT.
_TRANSPORT = _http.TransportPolicy(
    catalogue=ERRORS, unanswered=SendOutcome.TRANSIENT, detail=_http.exception_name
)


def signature(channel_secret: str, body: bytes) -> str:
    """Return the ``x-line-signature`` LINE computes for ``body``."""
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check ``x-line-signature`` against the channel secret, on the raw body."""
    secret = config.get("channel_secret") or ""
    supplied = request.headers.get(SIGNATURE_HEADER)
    if not secret or not supplied:
        return False
    expected = signature(str(secret), request.body).encode()
    return hmac.compare_digest(expected, supplied.encode("utf-8", "replace"))


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """Return None: LINE's check is a signed ``events: []`` body that ``parse()`` answers."""
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Turn message events into inbound messages; every other event is ignored."""
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("events", []), list):
        raise MalformedPayload("expected an object with an events array")
    result = ParseResult()
    for index, event in enumerate(data.get("events", [])):
        with result.entry(event, f"events[{index}]") as part:
            _event(event, request.received_at, part)
    return result


def _event(event: Any, received_at: datetime, result: ParseResult) -> None:
    """One webhook event: a message is inbound, an unsend deletes the original, and every other
    event is recorded as understood and ignored (follow/unfollow as consent)."""
    if not isinstance(event, dict):
        raise MalformedPayload("event is not an object")
    kind = event.get("type")
    if kind == "message":
        result.inbound.append(_inbound(event, received_at))
    elif kind == "unsend":
        unsend = event.get("unsend")
        message_id = unsend.get("messageId") if isinstance(unsend, dict) else None
        if not isinstance(message_id, str | int) or not str(message_id):
            raise MalformedPayload("unsend event without unsend.messageId")
        result.deletions.append(
            Deletion(
                contact_address=_source_address(event),
                provider_message_id=str(message_id),
                occurred_at=_from_ms(event.get("timestamp"), received_at),
            )
        )
    elif kind in ("follow", "unfollow"):
        result.skip(SkipKind.CONSENT, f"{kind}: the contact {kind}ed the account", event)
    else:
        result.skip(SkipKind.IGNORED, f"{kind or 'untyped'} event: nothing to apply", event)


def retry_key(correlation_id: str) -> str:
    """Return the ``X-Line-Retry-Key`` for a message attempt (stable across retries)."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, correlation_id))


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Push a text message; LINE's acceptance counts as ``delivered`` (DESIGN §4)."""
    base = _http.base_url(config, DEFAULT_API_BASE_URL)
    headers = {
        "Authorization": f"Bearer {config.get('channel_access_token', '')}",
        "X-Line-Retry-Key": retry_key(message.correlation_id),
    }
    payload = {"to": message.to, "messages": [{"type": "text", "text": message.content}]}
    outcome = _http.exchange(
        client,
        "POST",
        f"{base}/v2/bot/message/push",
        policy=_TRANSPORT,
        json=payload,
        headers=headers,
    )
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response, keep_other=False)
    if response.status_code in (200, 409):
        # 409: this retry key was accepted before — the message already went out.
        provider_id = (
            _sent_message_id(body)
            or response.headers.get("x-line-accepted-request-id", "")
            or message.correlation_id
        )
        return SendResult(
            SendOutcome.ACCEPTED,
            provider_message_id=provider_id,
            status=Status.DELIVERED,
            raw=body,
        )

    code, title = _http.status_error(response, ERRORS, f"LINE error {response.status_code}")
    return _http.refused(response, body, code, title, _error_detail(body, response))


def _inbound(event: dict[str, Any], received_at: datetime) -> InboundMessage:
    message = event.get("message")
    if not isinstance(message, dict) or "id" not in message:
        raise MalformedPayload("message event without message or message.id")
    address = _source_address(event)
    kind = message.get("type")
    content = message.get("text", "") if kind == "text" else f"[{kind}]"
    return InboundMessage(
        contact_address=address,
        provider_message_id=str(message["id"]),
        content=str(content),
        occurred_at=_from_ms(event.get("timestamp"), received_at),
    )


def _source_address(event: dict[str, Any]) -> str:
    """The address a reply goes to: the user, or the group/room the event came from."""
    source = event.get("source")
    if not isinstance(source, dict):
        raise MalformedPayload("event without source")
    source_type = source.get("type", "user")
    address = source.get(f"{source_type}Id") if source_type in ("group", "room") else None
    address = address or source.get("userId")
    if not isinstance(address, str) or not _LINE_ID.fullmatch(address.replace("\x00", "")):
        raise MalformedPayload(f"source id is not a LINE user/group/room id: {address!r}")
    return address


def _from_ms(value: Any, default: datetime) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedPayload("timestamp out of range") from exc
    return default


def _sent_message_id(body: dict[str, Any]) -> str:
    sent = body.get("sentMessages")
    if isinstance(sent, list) and sent and isinstance(sent[0], dict) and sent[0].get("id"):
        return str(sent[0]["id"])
    return ""


def _error_detail(body: dict[str, Any], response: httpx.Response) -> str:
    detail = str(body.get("message") or response.reason_phrase or "")
    details = body.get("details")
    if isinstance(details, list):
        extra = [
            f"{item.get('property', '')}: {item.get('message', '')}".strip(": ")
            for item in details
            if isinstance(item, dict)
        ]
        if extra:
            detail = f"{detail} ({'; '.join(extra)})"
    return detail


SPEC = ProviderSpec(
    name="line",
    channels=(channel("line", "LINE", "YYNY", "send response only"),),
    config=ConfigSchema(
        required=("channel_access_token", "channel_secret"),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"channel_access_token", "channel_secret"}),
    ),
    kept_headers=frozenset({SIGNATURE_HEADER}),
    # LINE dedupes a repeated push by its X-Line-Retry-Key (derived from our correlation id).
    idempotent_send=True,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
