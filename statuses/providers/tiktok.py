"""TikTok Business Messaging (reference §10).

TikTok reports no delivery: ``im_mark_read_msg`` says the contact read the whole conversation up
to ``read.last_read_timestamp`` (ms) — a read watermark. The event's ``content`` is a JSON
*string* inside the JSON envelope.

Decisions:
* Signature ``TikTok-Signature: t=<unix s>,s=<hex HMAC-SHA256(client_secret, "<t>.<body>")>``.
  ``t`` must be within 5 minutes of ``request.received_at`` (either side, for clock skew), so a
  captured request cannot be replayed; TikTok signs each retry afresh.
* The contact is the personal account's user id (``from_user``/``to_user``: whichever is not
  the business ``user_openid``), matching DESIGN §4.1.
* Send: ``POST /open_api/v1.3/business/message/send/`` on ``business-api.tiktok.com`` with the
  ``Access-Token`` header, body ``{business_id, recipient_type: "CONVERSATION", recipient,
  message_type: "TEXT", text: {body}}``. TikTok answers HTTP 200 with ``code`` 0 and
  ``data.message.message_id`` on success and a non-zero ``code`` otherwise. TikTok addresses a
  *conversation*; ``message.to`` is passed as the recipient unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from statuses.machine import Status
from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
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
    Watermark,
    WebhookRequest,
    channel,
)

DEFAULT_API_BASE_URL = "https://business-api.tiktok.com"
SEND_PATH = "/open_api/v1.3/business/message/send/"
SIGNATURE_HEADER = "tiktok-signature"
REPLAY_WINDOW = timedelta(minutes=5)

READ_EVENT = "im_mark_read_msg"
INBOUND_EVENT = "im_receive_msg"
ECHO_EVENT = "im_send_msg"

# TikTok API ``code`` values that mean "try again later" [U: from TikTok's API error table].
TRANSIENT_CODES = frozenset({40100, 50000, 50002})

ERRORS: dict[str, ErrorInfo] = {
    "40001": ErrorInfo(
        "Permission denied",
        "The access token lacks the permission to send direct messages.",
        "Re-authorize the TikTok business account with messaging permissions.",
    ),
    "40002": ErrorInfo(
        "Invalid request",
        "TikTok refused a parameter of the request.",
        "Read the detail for the parameter TikTok did not accept.",
    ),
    "40100": ErrorInfo(
        "Too many requests",
        "TikTok is rate-limiting the account (about 10 requests per second).",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "40104": ErrorInfo(
        "Access token missing",
        "No access token was sent.",
        "Save the access token in the inbox settings.",
    ),
    "40105": ErrorInfo(
        "Access token invalid or expired",
        "TikTok does not accept the access token configured for this inbox.",
        "Refresh the TikTok access token and save it in the inbox settings.",
    ),
    "50000": ErrorInfo(
        "TikTok server error",
        "TikTok had an internal problem.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "outside_window": ErrorInfo(
        "Outside the reply window",
        "TikTok only lets a business reply within 48 hours of the contact's last message.",
        "Wait for the contact to write again.",
    ),
    "http_error": ErrorInfo(
        "Unexpected answer from TikTok",
        "TikTok answered with an HTTP error instead of its usual JSON.",
        "Check the API base URL and access token.",
    ),
    **_http.transport_errors("TikTok"),
}
_TRANSPORT = _http.TransportPolicy(catalogue=ERRORS, detail=_http.exception_name)


def signature(client_secret: str, body: bytes, timestamp: int | str) -> str:
    """Return the ``TikTok-Signature`` header value TikTok computes for ``body``."""
    digest = _digest(client_secret, body, str(timestamp))
    return f"t={timestamp},s={digest}"


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check the signature on the raw body and reject a ``t`` outside the replay window."""
    secret = config.get("client_secret") or ""
    header = request.headers.get(SIGNATURE_HEADER)
    if not secret or not header:
        return False
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    timestamp, supplied = fields.get("t", ""), fields.get("s", "")
    # isascii: str.isdigit() is also true for "²" or "٣", which int() refuses or reads.
    if not (timestamp.isascii() and timestamp.isdigit()) or not supplied or len(timestamp) > 12:
        return False
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (OverflowError, OSError, ValueError):  # beyond year 9999
        return False
    if abs(request.received_at - signed_at) > REPLAY_WINDOW:
        return False
    expected = _digest(str(secret), request.body, timestamp).encode()
    return hmac.compare_digest(expected, supplied.lower().encode("utf-8", "replace"))


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """TikTok's webhook needs no handshake answer of ours."""
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Turn a read event into a watermark and a message event into an inbound message."""
    envelope = _object(request.body, "body")
    event = envelope.get("event")
    if not isinstance(event, str) or not event:
        raise MalformedPayload("event missing")
    result = ParseResult()
    if event not in (READ_EVENT, INBOUND_EVENT, ECHO_EVENT):
        # Referrals, comments, anything new: nothing about our messages, but recorded.
        result.skip(SkipKind.IGNORED, f"{event}: nothing to apply", envelope)
        return result
    with result.entry(envelope, event) as part:
        _event(envelope, event, request, part)
    return result


def _event(
    envelope: dict[str, Any], event: str, request: WebhookRequest, result: ParseResult
) -> None:
    """One read, message or echo event (a malformed one is recorded and skipped)."""
    content = envelope.get("content")
    if isinstance(content, str | bytes):
        content = _object(content, "content")
    if not isinstance(content, dict):
        raise MalformedPayload("content is not an object")
    business_id = str(envelope.get("user_openid") or "")

    if event == READ_EVENT:
        read = content.get("read")
        last_read = read.get("last_read_timestamp") if isinstance(read, dict) else None
        if not _is_number(last_read):
            raise MalformedPayload("read.last_read_timestamp missing")
        up_to = _from_ms(last_read)
        conversation_id = str(content.get("conversation_id") or "")
        result.watermarks.append(
            Watermark(
                contact_address=_contact(content, business_id),
                status=Status.READ,
                up_to=up_to,
                occurred_at=_from_seconds(envelope.get("create_time"), up_to),
                dedupe_key=f"{conversation_id}:{event}:{last_read}",
                raw_status=event,
            )
        )
        return

    message_id = content.get("message_id")
    if not message_id:
        raise MalformedPayload("message event without message_id")
    if _is_number(content.get("timestamp")):
        occurred_at = _from_ms(content["timestamp"])
    else:
        occurred_at = _from_seconds(envelope.get("create_time"), request.received_at)
    kind = content.get("type")
    text = content.get("text")
    body = text.get("body", "") if isinstance(text, dict) else (text or "")
    result.inbound.append(
        InboundMessage(
            contact_address=_contact(content, business_id),
            provider_message_id=str(message_id),
            content=str(body) if kind in (None, "text") else f"[{kind}]",
            occurred_at=occurred_at,
            contact_name=str(content.get("from") or "") if event == INBOUND_EVENT else "",
            is_echo=event == ECHO_EVENT,
        )
    )


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a text message with the Business Messaging send API."""
    base = _http.base_url(config, DEFAULT_API_BASE_URL)
    payload = {
        "business_id": config.get("business_id", ""),
        "recipient_type": "CONVERSATION",
        "recipient": message.to,
        "message_type": "TEXT",
        "text": {"body": message.content},
    }
    headers = {"Access-Token": str(config.get("access_token", ""))}
    outcome = _http.exchange(
        client, "POST", f"{base}{SEND_PATH}", policy=_TRANSPORT, json=payload, headers=headers
    )
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response, keep_other=False)
    code = body.get("code")
    if _http.is_busy(response):
        busy_code = "40100" if response.status_code == 429 else "50000"
        return _http.refused(
            response, body, busy_code, "TikTok is busy", f"HTTP {response.status_code}"
        )
    if not response.is_success or not isinstance(code, int) or isinstance(code, bool):
        return _http.unexpected_answer(response, body, ERRORS)
    if code == 0:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        sent = data.get("message") if isinstance(data.get("message"), dict) else {}
        message_id = sent.get("message_id")
        if message_id:
            return SendResult(
                SendOutcome.ACCEPTED,
                provider_message_id=str(message_id),
                status=Status.SENT,
                raw=body,
            )
        return SendResult(
            SendOutcome.UNKNOWN,
            error_code="no_response",
            error_title="TikTok accepted without a message id",
            error_detail=json.dumps(body)[:500],
            raw=body,
        )
    info = ERRORS.get(str(code))
    return SendResult(
        SendOutcome.TRANSIENT if code in TRANSIENT_CODES else SendOutcome.REJECTED,
        error_code=str(code),
        error_title=info.title if info else f"TikTok error {code}",
        error_detail=str(body.get("message") or ""),
        raw=body,
    )


def _digest(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _contact(content: dict[str, Any], business_id: str) -> str:
    ids = []
    for key in ("from_user", "to_user"):
        user = content.get(key)
        if isinstance(user, dict) and user.get("id"):
            ids.append(str(user["id"]))
    for user_id in ids:
        if user_id != business_id:
            return user_id
    raise MalformedPayload("no personal-account user id in the event")


def _object(raw: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload(f"{what} is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedPayload(f"{what} is not a JSON object")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _from_ms(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPayload("timestamp out of range") from exc


def _from_seconds(value: Any, default: datetime) -> datetime:
    if not _is_number(value):
        return default
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedPayload("create_time out of range") from exc


SPEC = ProviderSpec(
    name="tiktok",
    channels=(channel("tiktok", "TIKTOK", "YNYY", "read watermark"),),
    config=ConfigSchema(
        required=("business_id", "access_token", "client_secret"),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"access_token", "client_secret"}),
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
