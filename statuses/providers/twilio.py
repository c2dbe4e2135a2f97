"""Twilio Programmable Messaging (SMS and WhatsApp), reference §3.

- verify: ``X-Twilio-Signature`` = Base64(HMAC-SHA1(auth token, URL + sorted params)), computed
  as twilio's ``RequestValidator`` does: over the public URL with *and* without the default
  port, each distinct value of multi-valued params, and for JSON bodies (``bodySHA256`` in the
  URL) over the URL alone plus the body hash. A ``X-Twilio-Webhooks-Signature-Settings`` header
  may ask for HMAC-SHA256; the key is still the inbox's auth token (SharedKey secrets have no
  config key yet, so such requests fail verification).
- parse: one form-encoded callback per status change, mapped per ``STATUSES``; ``received`` (or
  a ``Body`` with no ``MessageStatus``) is an inbound message. Dedupe key
  ``<MessageSid>:<MessageStatus>:<ErrorCode>:<RawDlrDoneDate>``; the event time is the carrier's
  ``RawDlrDoneDate`` (YYMMDDhhmm, UTC assumed) when present, else our arrival time. Our
  correlation id rides on the StatusCallback URL as ``?tm=``.
- send: ``POST /2010-04-01/Accounts/<sid>/Messages.json`` (form) with Basic auth. WhatsApp
  addresses get the ``whatsapp:`` prefix. A template is a Content API template:
  ``template["content_sid"]`` (or a ``name`` that is an ``HX…`` sid) with optional
  ``template["variables"]``.

``send`` needs to know whether the inbox is ``twilio_whatsapp``: it reads ``config["channel_type"]``
when the caller provides it, else a ``whatsapp:`` prefix on ``from_number`` or ``to``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
    ConsentScope,
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
    WebhookRequest,
    channel,
    is_e164,
    sms_keyword_consent,
)

DEFAULT_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "x-twilio-signature"
SIGNATURE_SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
CORRELATION_PARAM = "tm"
WHATSAPP_PREFIX = "whatsapp:"

_DIGESTS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

STATUSES: dict[str, str] = {
    "accepted": Status.SENT,
    "scheduled": Status.SENT,
    "queued": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    # In the API enum with no documented meaning: some recipients got it, so it is delivered.
    "partially_delivered": Status.DELIVERED,
    "read": Status.READ,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}
INBOUND_STATUSES = frozenset({"receiving", "received"})

ERRORS: dict[str, ErrorInfo] = {
    "30003": ErrorInfo(
        "Unreachable destination handset",
        "The phone is off, out of coverage, cannot receive SMS, or the carrier had a problem.",
        "Try again later or reach the contact another way.",
        permanent=False,
    ),
    "30004": ErrorInfo(
        "Message blocked",
        "The message was blocked, for example because the recipient blocked the sender.",
        "Do not resend; reach the contact another way.",
    ),
    "30005": ErrorInfo(
        "Unknown destination handset",
        "The number does not exist or is no longer in service.",
        "Check the number with the contact.",
    ),
    "30006": ErrorInfo(
        "Landline or unreachable carrier",
        "The number is a landline or its carrier cannot receive text messages.",
        "Use a mobile number.",
    ),
    "30007": ErrorInfo(
        "Message filtered",
        "The carrier filtered the message as spam or a policy violation.",
        "Review the content and the sender's registration.",
    ),
    "30008": ErrorInfo(
        "Unknown error",
        "The carrier reported an unspecified error.",
        "Try again later.",
        permanent=False,
    ),
    "21610": ErrorInfo(
        "Recipient unsubscribed",
        "The contact replied STOP to this sender.",
        "Do not send until the contact replies START.",
        opts_out=ConsentScope.ALL,
    ),
    "30032": ErrorInfo(
        "Toll-free number not verified",
        "US/Canada carriers block unverified toll-free senders.",
        "Complete toll-free verification for the sending number.",
    ),
    "30034": ErrorInfo(
        "Unregistered A2P 10DLC number",
        "US carriers block messages from 10DLC numbers not registered to a campaign.",
        "Register the sending number with an A2P 10DLC campaign.",
    ),
    "63016": ErrorInfo(
        "Outside the WhatsApp messaging window",
        "More than 24 hours have passed since the contact last wrote: only templates may be sent.",
        "Send an approved template (ContentSid) instead of free text.",
    ),
    "63014": ErrorInfo(
        "Blocked by the contact",
        "The contact blocked or opted out of messages from this sender.",
        "Do not resend.",
    ),
    "63024": ErrorInfo(
        "Invalid message recipient",
        "The recipient cannot receive WhatsApp messages.",
        "Check the number with the contact.",
    ),
    "63032": ErrorInfo(
        "Contact is part of a WhatsApp experiment",
        "Meta held back this marketing message because the number is in an experiment.",
        "Do not resend: it would fail the same way.",
    ),
    "63017": ErrorInfo(
        "Rate limit exceeded",
        "The account sent faster than its combined limit.",
        "Send more slowly; the message can be retried.",
        permanent=False,
    ),
    "63049": ErrorInfo(
        "Meta did not deliver this marketing message",
        "Meta chose not to deliver this WhatsApp marketing message (per-user limit).",
        "Do not resend for at least 24 hours.",
    ),
    # Common codes of Twilio's public error list beyond the reference's table (issue #9).
    "30001": ErrorInfo(
        "Queue overflow",
        "Too many messages were queued for this sender, so Twilio dropped this one.",
        "Send more slowly, or spread the traffic over a Messaging Service with more numbers.",
        permanent=False,
    ),
    "30002": ErrorInfo(
        "Twilio account suspended",
        "The Twilio account (or subaccount) is suspended, so nothing can be sent.",
        "An admin should check the account's status and billing in the Twilio Console.",
    ),
    "30009": ErrorInfo(
        "Missing segment",
        "One part of a multi-part message did not arrive at the handset.",
        "Shorten the message or resend it; the contact may have received only part of it.",
        permanent=False,
    ),
    "30010": ErrorInfo(
        "Message price exceeds max price",
        "Sending would cost more than the maximum price set for this message.",
        "Raise or remove the max price for this destination.",
    ),
    "30019": ErrorInfo(
        "Content size exceeds carrier limit",
        "The message (with its media) is larger than the carrier accepts.",
        "Send smaller media or a shorter text.",
    ),
    "30022": ErrorInfo(
        "US A2P 10DLC rate limit exceeded",
        "The number sent more messages than its 10DLC campaign's throughput allows.",
        "Send more slowly; the limit depends on the registered brand and campaign.",
        permanent=False,
    ),
    "30023": ErrorInfo(
        "US A2P 10DLC daily cap reached",
        "The brand reached its daily message cap for T-Mobile.",
        "Wait for the cap to reset tomorrow, or ask for a higher tier.",
        permanent=False,
    ),
    "30024": ErrorInfo(
        "Numeric sender id not provisioned",
        "The sending number is not provisioned with the destination carrier.",
        "Register the number for this destination, or send from another number.",
    ),
    "21612": ErrorInfo(
        "Number not reachable from this sender",
        "The destination cannot be reached from this 'From' number (e.g. a country or carrier "
        "the number cannot send to).",
        "Send from a number that can reach this destination.",
    ),
    "21617": ErrorInfo(
        "Message body too long",
        "The message body exceeds Twilio's 1,600-character limit.",
        "Shorten the message or split it into several.",
    ),
    "63001": ErrorInfo(
        "Channel could not authenticate the request",
        "The channel (e.g. WhatsApp) refused Twilio's credentials for this sender.",
        "An admin should check the sender's channel setup in the Twilio Console.",
    ),
    "63003": ErrorInfo(
        "Channel could not find the recipient",
        "The 'To' address does not exist on the channel (e.g. the number is not on WhatsApp).",
        "Check the number with the contact, or reach them on SMS.",
    ),
    "63005": ErrorInfo(
        "Channel did not accept the content",
        "The channel refused the message content.",
        "Check the content against the channel's rules (length, media type, template).",
    ),
    "63007": ErrorInfo(
        "No channel with this sender address",
        "Twilio could not find a channel (e.g. a WhatsApp sender) for the 'From' address.",
        "Check the inbox's from number: it must be an enabled WhatsApp sender.",
    ),
    "63013": ErrorInfo(
        "Channel policy violation",
        "The channel refused the message because it breaks the channel's policy.",
        "Review the channel's messaging policy before sending again.",
    ),
    "63015": ErrorInfo(
        "Recipient has not joined the sandbox",
        "The WhatsApp sandbox only sends to numbers that joined it with the join code.",
        "Ask the contact to send the sandbox join code, or use a production sender.",
    ),
    "63018": ErrorInfo(
        "Rate limit exceeded for the channel",
        "More messages were sent through the channel (e.g. WhatsApp) than it allows for this "
        "sender right now.",
        "Send more slowly; Tickmark retries later.",
        permanent=False,
    ),
    "63021": ErrorInfo(
        "Channel invalid content",
        "The channel found the content invalid (for example a template or media it rejects).",
        "Check the template variables and media, then send again.",
    ),
    "63030": ErrorInfo(
        "Unsupported parameter for this channel",
        "The message used a parameter this channel does not support.",
        "Send a plain message this channel supports.",
    ),
    "63038": ErrorInfo(
        "Daily message limit reached",
        "The account reached the number of messages it may send per day on this channel.",
        "Wait until tomorrow, or ask Twilio for a higher limit.",
        permanent=False,
    ),
    # Errors the Messages API returns synchronously at send time.
    "20003": ErrorInfo(
        "Authentication failed",
        "The account SID or auth token is wrong.",
        "An admin should check the inbox's Twilio credentials.",
    ),
    "21211": ErrorInfo(
        "Invalid 'To' phone number",
        "The recipient number is not a valid phone number.",
        "Check the number; it must be in E.164 format (+15551234567).",
    ),
    "21408": ErrorInfo(
        "Region not enabled",
        "The account may not send messages to this country.",
        "Enable the region in Twilio's geo permissions.",
    ),
    "21606": ErrorInfo(
        "Invalid 'From' number",
        "The sending number cannot send messages.",
        "An admin should check the inbox's sender number.",
    ),
    "21614": ErrorInfo(
        "Not a mobile number",
        "The recipient number cannot receive text messages.",
        "Use a mobile number.",
    ),
}


# --------------------------------------------------------------------------------------------
# Verification


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check ``X-Twilio-Signature`` as twilio's RequestValidator does, in constant time."""
    token = config.get("auth_token")
    signature = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not isinstance(token, str) or not token or not signature:
        return False
    digest = _DIGESTS.get(_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER)))
    if digest is None:
        return False
    try:
        url = urlparse(request.url)
        variants = {_with_default_port(url), _without_port(url)}
        body_hash = parse_qs(url.query).get("bodySHA256")
    except ValueError:  # an unparsable URL or port
        return False
    if body_hash:
        # JSON-bodied webhooks sign the URL only; the body is pinned by its hash in the URL.
        actual = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(actual.encode(), body_hash[0].encode("utf-8", "replace")):
            return False
        params: dict[str, list[str]] = {}
    else:
        params = _form(request.body)
    given = signature.encode("utf-8", "replace")
    matches = [
        hmac.compare_digest(signature_for(token, variant, params, digest).encode(), given)
        for variant in sorted(variants)
    ]
    return any(matches)


def signature_for(
    token: str,
    url: str,
    params: dict[str, list[str]],
    digest: Callable[..., Any] = hashlib.sha1,
) -> str:
    """Compute Twilio's signature of a URL and its POST params."""
    signed = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            signed += name + value
    mac = hmac.new(token.encode(), signed.encode(), digest)
    return base64.b64encode(mac.digest()).decode()


def _signature_algorithm(settings: str | None) -> str:
    for part in (settings or "").split(","):
        name, separator, value = part.partition("=")
        if separator and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


# Twilio signs the URL either with or without the default port, so both must be tried.
def _with_default_port(url: Any) -> str:
    if url.port:
        return url.geturl()
    port = 443 if url.scheme == "https" else 80
    return url._replace(netloc=f"{url.netloc}:{port}").geturl()


def _without_port(url: Any) -> str:
    if not url.port:
        return url.geturl()
    return url._replace(netloc=url.netloc.rsplit(":", 1)[0]).geturl()


def _form(body: bytes) -> dict[str, list[str]]:
    # Undecodable bytes become U+FFFD, as in Django's QueryDict: a forged body then simply
    # fails to match.
    return parse_qs((_base64_form(body) or body).decode("utf-8", "replace"), keep_blank_values=True)


_TWILIO_KEYS = ("MessageSid", "SmsSid", "AccountSid")


def _base64_form(body: bytes) -> bytes | None:
    """Twilio's form, base64-encoded whole by a relay in front of Tickmark (an API gateway or
    a function URL that passes bodies on as base64) — decoded, else None.

    A real form always has ``=`` between a name and its value and ``&`` between fields; base64
    has ``=`` only as trailing padding, so the two cannot be confused. The signature is then
    checked over the decoded params, exactly as Twilio computed it. A message's own ``Body``
    is never decoded: a contact may well send text that happens to be valid base64.
    """
    stripped = body.strip()
    if not stripped or b"&" in stripped or b"=" in stripped.rstrip(b"="):
        return None
    try:
        decoded = base64.b64decode(stripped, validate=True)
    except ValueError:
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return None
    params = parse_qs(text, keep_blank_values=True)
    return decoded if any(key in params for key in _TWILIO_KEYS) else None


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """Return None: Twilio has no subscription handshake."""
    return None


# --------------------------------------------------------------------------------------------
# Parsing


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Parse one status callback or inbound message."""
    params = {name: values[-1] for name, values in _form(request.body).items()}
    message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
    raw_status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if not message_sid:
        raise MalformedPayload("no MessageSid")
    result = ParseResult()
    if raw_status in INBOUND_STATUSES or (not params.get("MessageStatus") and "Body" in params):
        inbound = _inbound(message_sid, params, request)
        if is_e164(inbound.contact_address):
            result.inbound.append(inbound)
            # SMS keywords only: "STOP" on WhatsApp is just a message.
            consent = None if _is_whatsapp(params) else sms_keyword_consent(inbound)
            if consent is not None:
                result.consents.append(consent)
        else:
            # An alphanumeric sender ("MTN", a bank's name) or a short code: nobody to answer.
            result.skip(
                SkipKind.INVALID_SENDER,
                f"From {params.get('From', '')!r} is not an E.164 number",
                {k: v for k, v in params.items() if k in _RECORDED_PARAMS},
            )
        return result
    if not raw_status:
        raise MalformedPayload("neither a status callback nor an inbound message")
    error_code = params.get("ErrorCode", "")
    done_date = params.get("RawDlrDoneDate", "")
    status = STATUSES.get(raw_status, UNRECOGNIZED)
    title = ""
    detail = ""
    if error_code or status == Status.FAILED:
        info = ERRORS.get(error_code)
        title = info.title if info else ("Canceled" if raw_status == "canceled" else "")
        detail = params.get("ChannelStatusMessage") or params.get("ErrorMessage") or ""
    result.statuses.append(
        StatusUpdate(
            provider_message_id=message_sid,
            status=status,
            raw_status=raw_status,
            occurred_at=_done_date(done_date) or request.received_at,
            dedupe_key=f"{message_sid}:{raw_status}:{error_code}:{done_date}",
            correlation_id=request.query.get(CORRELATION_PARAM, ""),
            error_code=error_code,
            error_title=title,
            error_detail=detail,
            recipient=_address(params.get("To", "")),
            raw=params,
        )
    )
    return result


# What a skipped inbound message keeps on its delivery note (the raw body keeps the rest).
_RECORDED_PARAMS = ("MessageSid", "SmsSid", "From", "To", "NumMedia")


def _inbound(message_sid: str, params: dict[str, str], request: WebhookRequest) -> InboundMessage:
    content = params.get("Body", "")
    if not content and params.get("NumMedia", "0") not in ("", "0"):
        content = "[media]"
    return InboundMessage(
        contact_address=_address(params.get("From", "")),
        provider_message_id=message_sid,
        content=content,
        occurred_at=request.received_at,
        contact_name=params.get("ProfileName", ""),
    )


def _is_whatsapp(params: dict[str, str]) -> bool:
    return params.get("From", "").startswith(WHATSAPP_PREFIX)


def _address(value: str) -> str:
    return value.removeprefix(WHATSAPP_PREFIX)


def _done_date(value: str) -> datetime | None:
    """Parse the carrier's YYMMDDhhmm done date; it carries no zone, UTC is assumed."""
    if len(value) != 10 or not value.isdigit():
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Sending


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Create a message through the Messages API."""
    missing = _http.missing_config(config, "account_sid", "auth_token")
    if missing:
        return missing
    from_number = str(config.get("from_number") or "")
    service_sid = str(config.get("messaging_service_sid") or "")
    if not from_number and not service_sid:
        return _http.misconfigured("from_number or messaging_service_sid")
    whatsapp = (
        config.get("channel_type") == "twilio_whatsapp"
        or from_number.startswith(WHATSAPP_PREFIX)
        or message.to.startswith(WHATSAPP_PREFIX)
    )
    form: dict[str, str] = {"To": _channel_address(message.to, whatsapp)}
    if from_number:
        form["From"] = _channel_address(from_number, whatsapp)
    if service_sid:
        form["MessagingServiceSid"] = service_sid
    if message.template:
        content_sid = message.template.get("content_sid") or message.template.get("name") or ""
        if not str(content_sid).startswith("HX"):
            return SendResult(
                SendOutcome.REJECTED,
                error_code="invalid_template",
                error_title="Template needs a Twilio Content SID",
                error_detail="set template.content_sid to the HX… sid of an approved template",
            )
        form["ContentSid"] = str(content_sid)
        if message.template.get("variables"):
            form["ContentVariables"] = json.dumps(message.template["variables"])
    else:
        form["Body"] = message.content
    if message.status_callback_url:
        form["StatusCallback"] = _with_correlation(
            message.status_callback_url, message.correlation_id
        )
    account_sid = str(config["account_sid"])
    base = _http.base_url(config, DEFAULT_BASE_URL)
    outcome = _http.exchange(
        client,
        "POST",
        f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json",
        data=form,
        auth=(account_sid, str(config["auth_token"])),
    )
    if isinstance(outcome, SendResult):
        return outcome
    return _result(outcome)


def _channel_address(address: str, whatsapp: bool) -> str:
    if whatsapp and not address.startswith(WHATSAPP_PREFIX):
        return WHATSAPP_PREFIX + address
    return address


def _with_correlation(url: str, correlation_id: str) -> str:
    if not correlation_id:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({CORRELATION_PARAM: correlation_id})}"


def _result(response: httpx.Response) -> SendResult:
    body = _http.response_json(response)
    if response.is_success:
        return _http.accepted(response, body, body.get("sid"), what="message sid")
    code = body.get("code")
    code_text = str(code) if code is not None else f"http_{response.status_code}"
    info = ERRORS.get(code_text)
    message = str(body.get("message") or "")
    title = info.title if info else message
    return _http.refused(response, body, code_text, title, message)


# --------------------------------------------------------------------------------------------
# Reconciling a message whose send outcome is unknown


def reconcile(
    client: httpx.Client, config: dict[str, Any], provider_message_id: str, now: datetime
) -> StatusUpdate | None:
    """Fetch one message resource (``GET …/Messages/<sid>.json``) and turn its status into an
    update; None when Twilio does not answer it or names no status we know."""
    sid = str(config["account_sid"])
    base = _http.base_url(config, DEFAULT_BASE_URL)
    response = client.get(
        f"{base}/2010-04-01/Accounts/{sid}/Messages/{provider_message_id}.json",
        auth=(sid, str(config["auth_token"])),
    )
    if response.status_code != 200:
        return None
    body = response.json()
    raw_status = str(body.get("status") or "")
    status = STATUSES.get(raw_status, UNRECOGNIZED)
    if status == UNRECOGNIZED:
        return None
    code = str(body.get("error_code") or "")
    info = ERRORS.get(code)
    return StatusUpdate(
        provider_message_id=provider_message_id,
        status=status,
        raw_status=raw_status,
        occurred_at=now,
        dedupe_key=f"reconcile:{provider_message_id}:{raw_status}:{code}",
        error_code=code,
        error_title=info.title if info and code else "",
        error_detail=str(body.get("error_message") or "") if code else "",
    )


SPEC = ProviderSpec(
    name="twilio",
    channels=(
        channel(
            "twilio_sms", "SMS", "YYNY", "Twilio status callback", time_to_live=timedelta(days=3)
        ),
        channel(
            "twilio_whatsapp",
            "WHATSAPP",
            "YYYY",
            "Twilio status callback",
            has_service_window=True,
            time_to_live=timedelta(days=30),
        ),
    ),
    config=ConfigSchema(
        required=("account_sid", "auth_token"),
        optional=("from_number", "messaging_service_sid", BASE_URL_KEY),
        one_of=(("from_number", "messaging_service_sid"),),
        secret=frozenset({"auth_token"}),
    ),
    kept_headers=frozenset({SIGNATURE_HEADER}),
    idempotent_send=False,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=reconcile,
    errors=ERRORS,
)
