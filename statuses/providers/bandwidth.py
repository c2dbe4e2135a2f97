"""Bandwidth Messaging API v2 (SMS), reference §8.

- verify: HTTP Basic credentials configured on the Bandwidth application
  (``callback_username``/``callback_password``), compared in constant time; Bandwidth signs
  nothing.
- parse: the body is always a JSON array of events. ``message-sending``/``message-sent`` →
  sent, ``message-delivered`` → delivered, ``message-failed`` → failed (``errorCode`` +
  ``description``), ``message-read`` → read, ``message-received`` → inbound. Dedupe key
  ``<message.id>:<type>`` (``:<errorCode>`` for failures); our correlation id comes back in
  ``message.tag``. The event time is ``eventTime`` when given (the read time on
  ``message-read``), else ``time``.
- send: ``POST /api/v2/users/<account_id>/messages`` with Basic auth; ``202`` with ``id``.

Error 9902 (no delivery receipt in time) stays a failure, as Bandwidth reports it, but is marked
not permanent: the message may well have arrived.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from statuses.machine import UNRECOGNIZED, Status
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
    SendResult,
    SkipKind,
    StatusUpdate,
    WebhookRequest,
    channel,
    is_e164,
    sms_keyword_consent,
)
from statuses.providers.meta import wire as meta_wire

DEFAULT_BASE_URL = "https://messaging.bandwidth.com"

STATUSES: dict[str, str] = {
    "message-sending": Status.SENT,
    "message-sent": Status.SENT,
    "message-delivered": Status.DELIVERED,
    "message-failed": Status.FAILED,
    "message-read": Status.READ,
}
INBOUND_TYPE = "message-received"


# Reference §8.3: first digit 4 = client, 5 = server, 9 = ambiguous.
ERRORS: dict[str, ErrorInfo] = {
    "4301": ErrorInfo(
        "Malformed message encoding",
        "The message text could not be encoded.",
        "Remove unsupported characters.",
    ),
    "4302": ErrorInfo(
        "Malformed 'from' number",
        "The sending number is not valid.",
        "An admin should check the inbox's sender number.",
    ),
    "4303": ErrorInfo(
        "Malformed 'to' number",
        "The recipient number is not valid.",
        "Check the number; it must be in E.164 format (+15551234567).",
    ),
    "4360": ErrorInfo(
        "Message expired",
        "The message was not delivered before it expired.",
        "Send it again if it is still relevant.",
    ),
    "4403": ErrorInfo(
        "Messaging forbidden on 'from' number",
        "The sending number is not allowed to send messages.",
        "An admin should enable messaging on the sender number.",
    ),
    "4404": ErrorInfo(
        "Messaging forbidden on 'to' number",
        "The recipient number cannot receive messages.",
        "Reach the contact another way.",
    ),
    "4405": ErrorInfo(
        "Unallocated 'from' number",
        "The sending number is not assigned to any carrier.",
        "An admin should check the inbox's sender number.",
    ),
    "4406": ErrorInfo(
        "Unallocated 'to' number",
        "The recipient number is not in service.",
        "Check the number with the contact.",
    ),
    "4410": ErrorInfo(
        "Media unavailable",
        "The message's media could not be fetched.",
        "Check the media URL.",
    ),
    "4432": ErrorInfo(
        "Country forbidden",
        "Messaging to this country is not enabled for the account.",
        "Enable the destination country with Bandwidth.",
    ),
    "4470": ErrorInfo(
        "Rejected as spam",
        "Bandwidth rejected the message as spam (it is still billed).",
        "Review the content before sending again.",
    ),
    "4481": ErrorInfo(
        "'From' number on blocklist",
        "The sending number is on a blocklist.",
        "An admin should contact Bandwidth support.",
    ),
    "4482": ErrorInfo(
        "'To' number on blocklist",
        "The recipient number is on a blocklist.",
        "Reach the contact another way.",
    ),
    "4700": ErrorInfo(
        "Invalid service type",
        "The carrier does not support this kind of message.",
        "Send plain SMS.",
    ),
    "4720": ErrorInfo(
        "Invalid destination",
        "The number is a landline or unknown, or the carrier blocks this kind of sender.",
        "Use a mobile number.",
    ),
    "4721": ErrorInfo(
        "Number deactivated",
        "The recipient number has been deactivated.",
        "Check the number with the contact.",
    ),
    "4750": ErrorInfo(
        "Carrier rejected the message",
        "The carrier rejected the message without giving a reason.",
        "Try again later or reach the contact another way.",
    ),
    "4770": ErrorInfo(
        "Carrier flagged as spam",
        "The carrier rejected the message as spam.",
        "Review the content and the sender's registration.",
    ),
    "4795": ErrorInfo(
        "Toll-free number not verified",
        "Carriers block unverified toll-free senders.",
        "Complete toll-free verification for the sending number.",
    ),
    "9902": ErrorInfo(
        "Timed out waiting for a delivery receipt",
        "The carrier never confirmed delivery; the message may well have arrived.",
        "Check with the contact before sending it again.",
        permanent=False,
    ),
    # Send-time API error types.
    "request-validation": ErrorInfo(
        "Invalid request",
        "Bandwidth refused the message as invalid.",
        "Check the recipient number and the inbox's application id.",
    ),
    "max-message-queue-size-exceeded": ErrorInfo(
        "Sending queue full",
        "The account's message queue is full.",
        "Sending slows down and retries automatically.",
        permanent=False,
    ),
}


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check the callback's Basic credentials in constant time."""
    username = config.get("callback_username")
    password = config.get("callback_password")
    if not (isinstance(username, str) and username and isinstance(password, str) and password):
        return False
    scheme, _, encoded = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    given_username, separator, given_password = decoded.partition(b":")
    # Compare both halves every time, so timing does not tell which one was wrong.
    username_ok = hmac.compare_digest(given_username, username.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    return bool(separator) and username_ok and password_ok


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """Return None: Bandwidth has no subscription handshake."""
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse every event of a callback array."""
    events = meta_wire.load_json(request.body)
    if not isinstance(events, list):
        raise MalformedPayload("body is not a JSON array")
    result = ParseResult()
    for index, event in enumerate(events):
        with result.entry(event, f"[{index}]") as part:
            _event(meta_wire.as_object(event, "event"), request, part)
    return result


def _event(event: dict[str, Any], request: WebhookRequest, result: ParseResult) -> None:
    """One callback event: an inbound message or a status of one of ours."""
    kind = meta_wire.as_text(event.get("type"), "type")
    message = meta_wire.as_object(event.get("message"), "message")
    message_id = meta_wire.as_text(message.get("id"), "message.id")
    occurred_at = _time(event.get("eventTime") or event.get("time"), request.received_at)
    if kind == INBOUND_TYPE:
        text = message.get("text")
        media = message.get("media")
        content = text if isinstance(text, str) and text else ("[media]" if media else "")
        sender = meta_wire.as_text(message.get("from"), "message.from")
        if not is_e164(sender):
            result.skip(SkipKind.INVALID_SENDER, f"from {sender!r} is not an E.164 number", event)
            return
        inbound = InboundMessage(
            contact_address=sender,
            provider_message_id=message_id,
            content=content,
            occurred_at=occurred_at,
        )
        result.inbound.append(inbound)
        consent = sms_keyword_consent(inbound)
        if consent is not None:
            result.consents.append(consent)
        return
    status = STATUSES.get(kind, UNRECOGNIZED)
    error_code = meta_wire.as_text(event.get("errorCode"), "errorCode", required=False)
    description = event.get("description")
    description = description if isinstance(description, str) else ""
    dedupe_key = f"{message_id}:{kind}"
    title = detail = ""
    if status == Status.FAILED:
        dedupe_key = f"{dedupe_key}:{error_code}"
        info = ERRORS.get(error_code)
        title = info.title if info else description
        detail = description
    tag = message.get("tag")
    result.statuses.append(
        StatusUpdate(
            provider_message_id=message_id,
            status=status,
            raw_status=kind,
            occurred_at=occurred_at,
            dedupe_key=dedupe_key,
            correlation_id=tag if isinstance(tag, str) else "",
            error_code=error_code,
            error_title=title,
            error_detail=detail,
            recipient=event["to"] if isinstance(event.get("to"), str) else "",
            raw=event,
        )
    )


def _time(value: Any, default: datetime) -> datetime:
    """Parse Bandwidth's ISO-8601 time to UTC; without one, fall back to the arrival time."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise MalformedPayload("time is not a string")
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise MalformedPayload(f"time is not an ISO-8601 time: {value!r}") from exc


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Create a message through the Messaging API."""
    missing = _http.missing_config(
        config, "account_id", "application_id", "username", "password", "from_number"
    )
    if missing:
        return missing
    payload: dict[str, Any] = {
        "applicationId": config["application_id"],
        "to": [message.to],
        "from": config["from_number"],
        "text": message.content,
    }
    if message.correlation_id:
        payload["tag"] = message.correlation_id
    base = _http.base_url(config, DEFAULT_BASE_URL)
    outcome = _http.exchange(
        client,
        "POST",
        f"{base}/api/v2/users/{config['account_id']}/messages",
        json=payload,
        auth=(str(config["username"]), str(config["password"])),
    )
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response)
    if response.is_success:
        return _http.accepted(response, body, body.get("id"))
    code = body.get("type")
    code_text = code if isinstance(code, str) and code else f"http_{response.status_code}"
    info = ERRORS.get(code_text)
    detail = str(body.get("description") or "")
    field_errors = body.get("fieldErrors")
    if isinstance(field_errors, list):
        detail = "; ".join(
            [detail]
            + [
                f"{item.get('fieldName')}: {item.get('description')}"
                for item in field_errors
                if isinstance(item, dict)
            ]
        ).strip("; ")
    title = info.title if info else detail
    return _http.refused(response, body, code_text, title, detail)


SPEC = ProviderSpec(
    name="bandwidth",
    channels=(
        channel(
            "bandwidth_sms",
            "SMS",
            "YYNY",
            "Bandwidth callback array",
            time_to_live=timedelta(days=3),
        ),
    ),
    config=ConfigSchema(
        required=(
            "account_id",
            "application_id",
            "username",
            "password",
            "from_number",
            "callback_username",
            "callback_password",
        ),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"password", "callback_password"}),
    ),
    # Callbacks prove themselves with Basic auth, a credential: nothing to keep.
    kept_headers=frozenset(),
    idempotent_send=False,
    webhook_retry_window=timedelta(hours=24),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
