"""Meta's shared wire formats (reference §1, §2, §4, §5).

WhatsApp Cloud (direct or relayed by 360dialog), Messenger and Instagram share the
``X-Hub-Signature-256`` signature, the ``hub.challenge`` handshake, the Graph API error body and,
per family, one webhook envelope:

- WhatsApp: ``entry[].changes[].value`` with ``statuses[]`` and ``messages[]``;
- Messenger platform (Messenger, Instagram): ``entry[].messaging[]`` with ``delivery``, ``read``
  and ``message`` events.

This module is not a provider (it is not in the registry); the provider modules import it.
It also holds the mapping of Graph answers the Meta senders share (``send_json``); the
provider-neutral HTTP plumbing under it is in ``_http``.

WhatsApp group messages: Meta sends one status per participant for the same ``wamid``
(``recipient_type: "group"``, ``recipient_participant_id``). Each participant's status is its own
event (the participant is part of the dedupe key), so the merge rule shows the *furthest* any
participant got: a group message is delivered as soon as one participant has it and read as soon
as one has read it. A per-participant ``failed`` says nothing about the others, and marking the
whole message failed would invite an agent to resend it to everybody, so it is kept (with its
error) as an UNRECOGNIZED event that changes nothing. A ``failed`` without a participant (the
group message as a whole) still fails the message. *Inbound* group messages (``group_id``) are
recorded on the delivery and not stored until groups are supported (DESIGN §5.1).

Real traffic (issue #9, DESIGN §5.1): bodies are parsed entry by entry — a malformed status,
message or event is recorded with its reason (``ParseResult.skipped``) and the rest applied;
only a body that is not a JSON object with the family's arrays is ``MalformedPayload``.
Senders must be addresses: a wa_id is digits, a page-/Instagram-scoped id is digits. Echoes
(Messenger/Instagram ``is_echo``, WhatsApp ``smb_message_echoes``) are outgoing to the
recipient. Deletions (Messenger/Instagram ``is_deleted``; WhatsApp ``type: "revoke"`` or
``"revoked"`` naming the original in ``revoke.id``/``message_id`` or ``context.id``, as BSPs
relay it) become ``Deletion``s of the original. Postbacks, referrals, opt-ins, reactions and
other fields are recorded as ignored; WhatsApp ``value.errors[]`` as provider errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import _http
from statuses.providers.base import (
    Deletion,
    ErrorInfo,
    HandshakeReply,
    InboundMessage,
    MalformedPayload,
    OutgoingMessage,
    ParseResult,
    SendResult,
    SkipKind,
    StatusUpdate,
    Watermark,
    WebhookRequest,
)

DEFAULT_API_VERSION = "v21.0"
SIGNATURE_HEADER = "x-hub-signature-256"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------------------------
# Authentication


def signature_valid(request: WebhookRequest, secret: object) -> bool:
    """Check ``X-Hub-Signature-256`` (hex HMAC-SHA256 of the raw body) in constant time."""
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not isinstance(secret, str) or not secret or not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    # Meta sends lowercase hex; accepting uppercase hex costs nothing and forges nothing.
    given = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(given, expected.encode())


def tokens_equal(given: object, expected: object) -> bool:
    """Compare a shared secret in constant time; a missing side never matches."""
    if not isinstance(given, str) or not isinstance(expected, str) or not given or not expected:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


def verify_app_secret(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check Meta's signature of the raw body with the app secret (a provider ``verify``)."""
    return signature_valid(request, config.get("app_secret"))


def handshake_verify_token(
    request: WebhookRequest, config: dict[str, Any]
) -> HandshakeReply | None:
    """Answer the subscription check Meta sends when the callback URL is saved, with the
    inbox's ``verify_token`` (a provider ``handshake``)."""
    return hub_handshake(request, config.get("verify_token"))


def hub_handshake(request: WebhookRequest, verify_token: object) -> HandshakeReply | None:
    """Answer Meta's ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``."""
    if request.method.upper() != "GET" or "hub.mode" not in request.query:
        return None
    if request.query.get("hub.mode") != "subscribe" or not tokens_equal(
        request.query.get("hub.verify_token", ""), verify_token
    ):
        return HandshakeReply(403)
    challenge = request.query.get("hub.challenge", "")
    if not challenge:
        return HandshakeReply(400)
    return HandshakeReply(200, challenge.encode())


# --------------------------------------------------------------------------------------------
# Payload helpers (strict about the shapes we rely on, silent about everything else)


def load_json(body: bytes) -> Any:
    """Decode a JSON body or raise ``MalformedPayload``."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedPayload(f"body is not JSON: {exc}") from exc


def as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} is not an object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """Return a list field; an absent field is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{where} is not an array")
    return value


def as_text(value: Any, where: str, *, required: bool = True) -> str:
    """Return an id-like field as text (Meta sends some ids as numbers)."""
    if isinstance(value, str) and (value or not required):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None and not required:
        return ""
    raise MalformedPayload(f"{where} is missing or not a string")


def _to_millis(value: Any, unit_ms: int, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):
            try:
                return int(value.strip()) * unit_ms
            except ValueError:
                value = float(value)
        if isinstance(value, int):
            return value * unit_ms
        if isinstance(value, float):
            return round(value * unit_ms)
    except (TypeError, ValueError, OverflowError):
        pass
    raise MalformedPayload(f"{where} is not a timestamp")


def _from_millis(millis: int, where: str) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError as exc:
        raise MalformedPayload(f"{where} is out of range") from exc


def seconds_to_datetime(value: Any, where: str) -> datetime:
    """Parse a Unix time in seconds (WhatsApp sends a string) to an aware UTC datetime."""
    return _from_millis(_to_millis(value, 1000, where), where)


def millis(value: Any, where: str) -> int:
    """Return a millisecond timestamp (Messenger watermarks) as an int."""
    return _to_millis(value, 1, where)


def millis_to_datetime(value: Any, where: str) -> datetime:
    """Parse a Unix time in *milliseconds* (Messenger/Instagram) to an aware UTC datetime."""
    return _from_millis(millis(value, where), where)


# --------------------------------------------------------------------------------------------
# WhatsApp

WHATSAPP_STATUSES: dict[str, str] = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "played": Status.READ,  # a voice message played is a voice message read (DESIGN §3.1)
    "failed": Status.FAILED,
}


def _info(title: str, explanation: str, hint: str, permanent: bool = True) -> ErrorInfo:
    return ErrorInfo(title=title, explanation=explanation, hint=hint, permanent=permanent)


# Reference §1.4 (titles agree across BSP mirrors and SDK hint tables). ``permanent=False``
# marks the codes where the same message can succeed later: send() retries those.
WHATSAPP_ERRORS: dict[str, ErrorInfo] = {
    "131026": _info(
        "Message undeliverable",
        "The number is not on WhatsApp, has not accepted the latest terms, runs an outdated "
        "app, or cannot receive business messages.",
        "Check the number with the contact; resending the same message will not help.",
    ),
    "131047": _info(
        "Re-engagement message",
        "More than 24 hours have passed since the contact last wrote: only approved templates "
        "may be sent.",
        "Send an approved template instead of free text.",
    ),
    "131049": _info(
        "Not delivered to maintain healthy ecosystem engagement",
        "Meta held back this marketing message because the contact has received too many.",
        "Do not resend for at least 24 hours.",
    ),
    "131050": _info(
        "Contact stopped marketing messages",
        "The contact has chosen to stop receiving marketing messages from this business.",
        "Stop sending marketing templates to this contact.",
    ),
    "131051": _info(
        "Unsupported message type",
        "WhatsApp does not support this kind of message.",
        "Send a supported message type (text, media, template).",
    ),
    "130472": _info(
        "Contact is part of an experiment",
        "Meta held back this marketing template because the number is in a Meta experiment; "
        "it is not billed.",
        "Do not resend: it would fail the same way.",
    ),
    "131000": _info(
        "Something went wrong",
        "WhatsApp reported an unspecified error.",
        "Try again later.",
        permanent=False,
    ),
    "131048": _info(
        "Spam rate limit hit",
        "Too many of this business's messages were blocked or reported, so sending is limited.",
        "Slow down and review message quality.",
        permanent=False,
    ),
    "131056": _info(
        "Pair rate limit hit",
        "Too many messages to the same contact in a short time (about one every 6 seconds).",
        "Wait a few seconds before sending to this contact again.",
        permanent=False,
    ),
    "130429": _info(
        "Rate limit hit",
        "The phone number's Cloud API throughput limit was reached.",
        "Send more slowly; the message will be retried.",
        permanent=False,
    ),
    "131052": _info(
        "Media download error",
        "WhatsApp could not download the media the contact sent.",
        "Ask the contact to send the file again.",
    ),
    "131053": _info(
        "Media upload error",
        "WhatsApp could not fetch or process the media in this message.",
        "Check the media URL, type and size.",
    ),
    "131042": _info(
        "Business eligibility payment issue",
        "The WhatsApp Business Account has a payment problem.",
        "An admin should fix the payment method in Meta Business Manager.",
    ),
    "131031": _info(
        "Account locked",
        "The business account is locked or restricted.",
        "An admin should check the account's status in Meta Business Manager.",
    ),
    "132000": _info(
        "Template parameter count mismatch",
        "The template was sent with a different number of variables than it defines.",
        "Send exactly the variables the template expects.",
    ),
    "132001": _info(
        "Template does not exist",
        "No approved template with this name and language exists.",
        "Check the template name, language code and approval status.",
    ),
    "132005": _info(
        "Template hydrated text too long",
        "The template text with its variables filled in is too long.",
        "Shorten the variable values.",
    ),
    "132007": _info(
        "Template format character policy violated",
        "The template content violates WhatsApp's formatting policy.",
        "Fix the template's variables or formatting.",
    ),
    "132012": _info(
        "Template parameter format mismatch",
        "A template variable has the wrong format.",
        "Match each variable to the type the template defines.",
    ),
    "132015": _info(
        "Template is paused",
        "The template was paused because of low quality.",
        "Edit the template or use another one.",
    ),
    "132016": _info(
        "Template is disabled",
        "The template was disabled because of repeated low quality.",
        "Create a new template.",
    ),
    "133010": _info(
        "Phone number not registered",
        "The business phone number is not registered with the Cloud API.",
        "An admin should register the number before sending.",
    ),
    "368": _info(
        "Temporarily blocked for policy violations",
        "The account is temporarily blocked for violating WhatsApp policies.",
        "An admin should review the policy notice in Meta Business Manager.",
    ),
    # Common request errors (Graph API) a misconfigured inbox produces at send time.
    "100": _info(
        "Invalid parameter",
        "The request had a missing or invalid parameter.",
        "Check the recipient number and message content.",
    ),
    "190": _info(
        "Access token expired or invalid",
        "The inbox's access token no longer works.",
        "An admin should update the access token in the inbox settings.",
    ),
    "131009": _info(
        "Parameter value is not valid",
        "A value in the message is not valid (for example the recipient number).",
        "Check the recipient number and message content.",
    ),
    "131021": _info(
        "Recipient cannot be sender",
        "The message was addressed to the business number itself.",
        "Send to the contact's number.",
    ),
    # Common codes of Meta's public error list beyond the reference's table (issue #9).
    "0": _info(
        "Authentication exception",
        "Meta could not authenticate the app user (token or permission problem).",
        "An admin should generate a new access token.",
    ),
    "3": _info(
        "API method not allowed",
        "The app lacks the capability or permission for this call.",
        "An admin should check the app's permissions in the Meta App Dashboard.",
    ),
    "4": _info(
        "Too many API calls",
        "The app reached its call rate limit.",
        "Send more slowly; the message will be retried.",
        permanent=False,
    ),
    "10": _info(
        "Permission denied",
        "The permission was not granted or has been removed.",
        "An admin should grant the WhatsApp permissions to the app again.",
    ),
    "80007": _info(
        "Rate limit issues",
        "The WhatsApp Business Account reached its rate limit.",
        "Send more slowly; the message will be retried.",
        permanent=False,
    ),
    "130497": _info(
        "Business account restricted for this country",
        "The business may not message users in the contact's country.",
        "Reach this contact through another channel.",
    ),
    "131005": _info(
        "Access denied",
        "The permission for this call was not granted or was removed.",
        "An admin should check the app's permissions and the token.",
    ),
    "131008": _info(
        "Required parameter is missing",
        "The request lacked a parameter WhatsApp requires.",
        "Check the message content and template variables.",
    ),
    "131016": _info(
        "Service unavailable",
        "WhatsApp is temporarily unavailable.",
        "Try again later; the message will be retried.",
        permanent=False,
    ),
    "131037": _info(
        "Display name approval needed",
        "The business phone number's display name is not approved yet.",
        "An admin should get the display name approved in WhatsApp Manager.",
    ),
    "131045": _info(
        "Incorrect certificate",
        "The phone number is not registered correctly (certificate problem).",
        "An admin should register the phone number again.",
    ),
    "131057": _info(
        "Account in maintenance mode",
        "The business account is in maintenance mode (e.g. a throughput upgrade).",
        "Wait a few minutes and send again.",
        permanent=False,
    ),
    "133004": _info(
        "Server temporarily unavailable",
        "WhatsApp's server is temporarily unavailable for this phone number.",
        "Try again later.",
        permanent=False,
    ),
    "133006": _info(
        "Phone number re-verification needed",
        "The business phone number must be verified again before it can send.",
        "An admin should verify the number again in WhatsApp Manager.",
    ),
}


def whatsapp_error(errors: list[Any], catalogue: dict[str, ErrorInfo]) -> tuple[str, str, str]:
    """Return (code, title, detail) of the first entry of a WhatsApp ``errors[]`` array."""
    if not errors:
        return "", "", ""
    first = as_object(errors[0], "errors[]")
    code = first.get("code")
    code_text = str(code) if code is not None else ""
    info = catalogue.get(code_text)
    title = first.get("title") or (info.title if info else "")
    data = first.get("error_data")
    detail = (data.get("details") if isinstance(data, dict) else None) or first.get("message")
    return code_text, str(title or ""), str(detail or "")


def parse_whatsapp(
    request: WebhookRequest, catalogue: dict[str, ErrorInfo] | None = None
) -> ParseResult:
    """Parse a WhatsApp webhook: every status and message of every change of every entry.

    Entry by entry (DESIGN §5.1): a malformed status or message is recorded with its reason
    and skipped, the rest applied. Only a body that is not a JSON object is malformed.
    """
    catalogue = WHATSAPP_ERRORS if catalogue is None else catalogue
    payload = as_object(load_json(request.body), "body")
    result = ParseResult()
    if "entry" not in payload and ("statuses" in payload or "messages" in payload):
        # 360dialog's legacy On-Premise shape: the ``value`` without the envelope (§2.2).
        _parse_whatsapp_value(payload, request, catalogue, result)
        return result
    for e, entry in enumerate(as_list(payload.get("entry"), "entry")):
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            result.skip(SkipKind.MALFORMED, f"entry[{e}]: not an object with changes[]", entry)
            continue
        for c, change in enumerate(entry.get("changes") or []):
            with result.entry(change, f"entry[{e}].changes[{c}]") as part:
                change = as_object(change, "changes[]")
                field = change.get("field", "messages")
                # Other fields (template status, account updates…) share the subscription.
                if field == "smb_message_echoes":
                    _parse_whatsapp_echoes(as_object(change.get("value"), "value"), request, part)
                elif field == "messages":
                    value = as_object(change.get("value"), "value")
                    _parse_whatsapp_value(value, request, catalogue, part)
                else:
                    part.skip(SkipKind.IGNORED, f"field {field!r}: not about messages", change)
    return result


def _parse_whatsapp_value(
    value: dict[str, Any],
    request: WebhookRequest,
    catalogue: dict[str, ErrorInfo],
    result: ParseResult,
) -> None:
    for i, item in enumerate(as_list(value.get("statuses"), "statuses")):
        with result.entry(item, f"statuses[{i}]") as part:
            part.statuses.append(
                _whatsapp_status(as_object(item, "statuses[]"), request, catalogue)
            )
    names: dict[str, str] = {}
    for contact in as_list(value.get("contacts"), "contacts"):
        if not isinstance(contact, dict):
            continue  # names are a nicety: a bad contact entry costs no message
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id = contact.get("wa_id")
        if isinstance(wa_id, str) and isinstance(name, str):
            names[wa_id] = name
    for i, item in enumerate(as_list(value.get("messages"), "messages")):
        with result.entry(item, f"messages[{i}]") as part:
            _whatsapp_message(as_object(item, "messages[]"), names, request, part)
    # value.errors[] are system errors tied to no message (e.g. 130429): no status to change,
    # but an admin must see them (logged as a warning, kept on the delivery).
    for item in as_list(value.get("errors"), "errors"):
        code, title, detail = whatsapp_error([item], catalogue)
        reason = " — ".join(part for part in (title, detail) if part) or "no description"
        result.skip(SkipKind.PROVIDER_ERROR, f"WhatsApp error {code}: {reason}", item, code=code)


def _whatsapp_status(
    item: dict[str, Any], request: WebhookRequest, catalogue: dict[str, ErrorInfo]
) -> StatusUpdate:
    wamid = as_text(item.get("id"), "statuses[].id")
    raw_status = as_text(item.get("status"), "statuses[].status")
    timestamp = item.get("timestamp")
    occurred_at = (
        request.received_at
        if timestamp is None
        else seconds_to_datetime(timestamp, "statuses[].timestamp")
    )
    status = WHATSAPP_STATUSES.get(raw_status, UNRECOGNIZED)
    recipient = as_text(item.get("recipient_id"), "statuses[].recipient_id", required=False)
    dedupe_key = f"{wamid}:{raw_status}"
    if item.get("recipient_type") == "group":
        participant = as_text(
            item.get("recipient_participant_id"),
            "statuses[].recipient_participant_id",
            required=False,
        )
        if participant:
            dedupe_key = f"{dedupe_key}:{participant}"
            recipient = participant
            if status == Status.FAILED:
                status = UNRECOGNIZED  # one participant failing is not the message failing
    code, title, detail = whatsapp_error(as_list(item.get("errors"), "errors"), catalogue)
    correlation = item.get("biz_opaque_callback_data")
    return StatusUpdate(
        provider_message_id=wamid,
        status=status,
        raw_status=raw_status,
        occurred_at=occurred_at,
        dedupe_key=dedupe_key,
        correlation_id=correlation if isinstance(correlation, str) else "",
        error_code=code,
        error_title=title,
        error_detail=detail,
        recipient=recipient,
        raw=item,
    )


# Message types that say the contact deleted ("deleted for everyone") an earlier message.
_WHATSAPP_REVOKES = frozenset({"revoke", "revoked"})


def _whatsapp_message(
    item: dict[str, Any], names: dict[str, str], request: WebhookRequest, result: ParseResult
) -> None:
    """One ``messages[]`` item: inbound, a deletion of an earlier one, or a group message
    (recorded and ignored until groups are supported)."""
    if item.get("group_id") is not None:
        result.skip(
            SkipKind.IGNORED,
            f"group message in group {item.get('group_id')!s}: groups are not supported",
        )
        return
    sender = whatsapp_sender(item.get("from"), item.get("from_user_id"), result, item)
    if sender is None:
        return
    timestamp = item.get("timestamp")
    occurred_at = (
        request.received_at
        if timestamp is None
        else seconds_to_datetime(timestamp, "messages[].timestamp")
    )
    kind = item.get("type")
    if kind in _WHATSAPP_REVOKES:
        part = item.get(kind)
        context = item.get("context")
        original = (part.get("message_id") or part.get("id")) if isinstance(part, dict) else None
        original = original or (context.get("id") if isinstance(context, dict) else None)
        result.deletions.append(
            Deletion(
                contact_address=sender,
                provider_message_id=as_text(original, f"messages[].{kind}.id"),
                occurred_at=occurred_at,
            )
        )
        return
    result.inbound.append(
        InboundMessage(
            contact_address=sender,
            provider_message_id=as_text(item.get("id"), "messages[].id"),
            content=_whatsapp_content(item),
            occurred_at=occurred_at,
            contact_name=names.get(str(item.get("from")), ""),
        )
    )


def whatsapp_sender(wa_id: Any, user_id: Any, result: ParseResult, entry: Any) -> str | None:
    """The contact's address from ``from`` (a wa_id: the phone number's digits) or, for a
    username-only contact (2026 BSUID), ``from_user_id``. A sender that is no address is
    recorded (``invalid_sender``) and None returned; no sender at all is malformed."""
    if wa_id is None or wa_id == "":
        if isinstance(user_id, str) and user_id.strip() and not any(c.isspace() for c in user_id):
            return user_id
        raise MalformedPayload("message without from")
    text = str(wa_id) if isinstance(wa_id, int) and not isinstance(wa_id, bool) else wa_id
    if isinstance(text, str) and _WA_ID.fullmatch(text.replace("\x00", "")):
        return "+" + text
    result.skip(SkipKind.INVALID_SENDER, f"from {wa_id!r} is not a WhatsApp id (digits)", entry)
    return None


_WA_ID = re.compile(r"[1-9][0-9]{4,14}")


def _parse_whatsapp_echoes(value: dict[str, Any], request: WebhookRequest, result: ParseResult):
    """``smb_message_echoes``: messages the business sent from the WhatsApp Business app on a
    number shared with the Cloud API — stored as outgoing ``sent`` to the recipient (``to``)."""
    for i, item in enumerate(as_list(value.get("message_echoes"), "message_echoes")):
        with result.entry(item, f"message_echoes[{i}]") as part:
            item = as_object(item, "message_echoes[]")
            to = item.get("to")
            text = str(to) if isinstance(to, int) and not isinstance(to, bool) else to
            if not isinstance(text, str) or not _WA_ID.fullmatch(text):
                part.skip(SkipKind.INVALID_SENDER, f"to {to!r} is not a WhatsApp id", item)
                continue
            timestamp = item.get("timestamp")
            part.inbound.append(
                InboundMessage(
                    contact_address="+" + text,
                    provider_message_id=as_text(item.get("id"), "message_echoes[].id"),
                    content=_whatsapp_content(item),
                    occurred_at=(
                        request.received_at
                        if timestamp is None
                        else seconds_to_datetime(timestamp, "message_echoes[].timestamp")
                    ),
                    is_echo=True,
                )
            )


def _whatsapp_content(item: dict[str, Any]) -> str:
    kind = item.get("type")
    kind = kind if isinstance(kind, str) and kind else "unknown"
    part = item.get(kind)
    part = part if isinstance(part, dict) else {}
    text: Any = None
    if kind == "text":
        text = part.get("body")
    elif kind == "button":
        text = part.get("text")
    elif kind == "interactive":
        reply = part.get("button_reply") or part.get("list_reply")
        text = reply.get("title") if isinstance(reply, dict) else None
    elif kind == "reaction":
        text = part.get("emoji")
    elif isinstance(part.get("caption"), str) and part["caption"]:
        return f"[{kind}] {part['caption']}"
    return text if isinstance(text, str) and text else f"[{kind}]"


def whatsapp_message_body(message: OutgoingMessage) -> dict[str, Any]:
    """Build the Cloud API ``/messages`` JSON for a text or template message."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        # WhatsApp addresses are the E.164 digits; DESIGN keeps the '+' in our addresses.
        "to": "".join(ch for ch in message.to if ch.isdigit()),
    }
    if message.template:
        template = dict(message.template)
        if isinstance(template.get("language"), str):
            template["language"] = {"code": template["language"]}
        body["type"] = "template"
        body["template"] = template
    else:
        body["type"] = "text"
        body["text"] = {"body": message.content}
    if message.correlation_id:
        # Echoed on every status, so statuses still find the message if the send answer is lost.
        body["biz_opaque_callback_data"] = message.correlation_id
    return body


def whatsapp_message_id(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        message_id = messages[0].get("id")
        return message_id if isinstance(message_id, str) else ""
    return ""


# --------------------------------------------------------------------------------------------
# Messenger platform (Messenger, Instagram)


def parse_messaging(request: WebhookRequest) -> ParseResult:
    """Parse a Messenger/Instagram webhook: every event of every entry, entry by entry.

    ``delivery`` → a delivered watermark plus one status per listed ``mid``; ``read`` → a read
    watermark (``watermark`` in ms, or Instagram's ``mid``); ``message`` → inbound, an echo of
    a message the business sent elsewhere (outgoing, to the recipient), or the contact
    deleting an earlier message (``is_deleted``). Postbacks, referrals, opt-ins, reactions and
    the like are recorded as understood and ignored. A malformed event, or a sender that is no
    Messenger/Instagram id, is recorded and skipped; the rest of the body is applied.
    """
    payload = as_object(load_json(request.body), "body")
    result = ParseResult()
    for e, entry in enumerate(as_list(payload.get("entry"), "entry")):
        with result.entry(entry, f"entry[{e}]") as part:
            _messaging_entry(as_object(entry, "entry[]"), e, request, part)
    return result


def _messaging_entry(
    entry: dict[str, Any], e: int, request: WebhookRequest, result: ParseResult
) -> None:
    owner_id = as_text(entry.get("id"), "entry[].id", required=False)
    entry_time = entry.get("time")
    default_time = (
        request.received_at if entry_time is None else millis_to_datetime(entry_time, "time")
    )
    events = list(as_list(entry.get("messaging"), "messaging"))
    # Handover protocol: while another app owns the thread, events arrive as standby.
    events += as_list(entry.get("standby"), "standby")
    for change in as_list(entry.get("changes"), "changes"):
        # Instagram subscriptions (and the dashboard's test button) may wrap the same
        # event as changes[].value with field messaging_seen / messages.
        if isinstance(change, dict) and change.get("field") in {
            "messages",
            "messaging_seen",
            "message_reads",
        }:
            events.append(change.get("value"))
        else:
            field = change.get("field") if isinstance(change, dict) else None
            result.skip(SkipKind.IGNORED, f"field {field!r}: not about messages", change)
    for i, event in enumerate(events):
        with result.entry(event, f"entry[{e}].messaging[{i}]") as part:
            _messaging_event(as_object(event, "event"), owner_id, default_time, part)


def _party(event: dict[str, Any], name: str) -> str:
    party = event.get(name)
    if party is None:
        return ""
    return as_text(as_object(party, name).get("id"), f"{name}.id", required=False)


# Page-/Instagram-scoped user ids are decimal digits.
_SCOPED_ID = re.compile(r"[0-9]{1,32}")

# Events understood and deliberately not acted on (they carry no message and no status).
_IGNORED_MESSAGING_EVENTS = (
    "postback",
    "referral",
    "optin",
    "reaction",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "policy_enforcement",
    "game_play",
    "messaging_feedback",
    "response_feedback",
)


def _scoped_id(value: str, role: str, result: ParseResult, event: dict[str, Any]) -> bool:
    """Check a contact id is a page-/Instagram-scoped id (digits); record it if not."""
    if _SCOPED_ID.fullmatch(value.replace("\x00", "")):
        return True
    result.skip(SkipKind.INVALID_SENDER, f"{role} id {value!r} is not a scoped user id", event)
    return False


def _messaging_event(
    event: dict[str, Any], owner_id: str, default_time: datetime, result: ParseResult
) -> None:
    sender = _party(event, "sender")
    recipient = _party(event, "recipient")
    timestamp = event.get("timestamp")
    occurred_at = default_time if timestamp is None else millis_to_datetime(timestamp, "timestamp")
    known = [key for key in ("delivery", "read", "message") if key in event]
    if not known:
        kind = next((k for k in _IGNORED_MESSAGING_EVENTS if k in event), None)
        if kind is None:
            others = sorted(k for k in event if k not in ("sender", "recipient", "timestamp"))
            kind = others[0] if others else "empty"
        result.skip(SkipKind.IGNORED, f"{kind} event: nothing to apply", event)
        return
    message = as_object(event["message"], "message") if "message" in event else None
    is_echo = message is not None and message.get("is_echo") is True
    # The contact is the sender, except in an echo (sent by the business to the recipient).
    contact = recipient if is_echo else sender
    if not contact:
        raise MalformedPayload(f"event without {'recipient' if is_echo else 'sender'}.id")
    if not _scoped_id(contact, "recipient" if is_echo else "sender", result, event):
        return
    if "delivery" in event:
        delivery = as_object(event["delivery"], "delivery")
        if delivery.get("watermark") is not None:
            watermark = millis(delivery["watermark"], "delivery.watermark")
            result.watermarks.append(
                Watermark(
                    contact_address=sender,
                    status=Status.DELIVERED,
                    up_to=millis_to_datetime(watermark, "delivery.watermark"),
                    occurred_at=occurred_at,
                    dedupe_key=f"{owner_id}:{sender}:delivery:{watermark}",
                    raw_status="delivery",
                )
            )
        for mid in as_list(delivery.get("mids"), "delivery.mids"):
            mid = as_text(mid, "delivery.mids[]")
            result.statuses.append(
                StatusUpdate(
                    provider_message_id=mid,
                    status=Status.DELIVERED,
                    raw_status="delivery",
                    occurred_at=occurred_at,
                    dedupe_key=f"{mid}:delivery",
                    recipient=sender,
                    raw=event,
                )
            )
    if "read" in event:
        read = as_object(event["read"], "read")
        mid = as_text(read.get("mid"), "read.mid", required=False)
        up_to: datetime | None = None
        marker = mid
        if read.get("watermark") is not None:
            watermark = millis(read["watermark"], "read.watermark")
            up_to = millis_to_datetime(watermark, "read.watermark")
            marker = str(watermark)
        if not marker:
            raise MalformedPayload("read has neither watermark nor mid")
        result.watermarks.append(
            Watermark(
                contact_address=sender,
                status=Status.READ,
                up_to=up_to,
                occurred_at=occurred_at,
                dedupe_key=f"{owner_id}:{sender}:read:{marker}",
                raw_status="read",
                up_to_provider_message_id=mid,
            )
        )
    if message is not None:
        mid = as_text(message.get("mid"), "message.mid")
        if message.get("is_deleted") is True and is_echo:
            result.skip(SkipKind.IGNORED, "echo of a deletion by the business: nothing to apply")
            return
        if message.get("is_deleted") is True:
            # The contact unsent a message: ``mid`` names the original (DESIGN §5.1).
            result.deletions.append(
                Deletion(contact_address=sender, provider_message_id=mid, occurred_at=occurred_at)
            )
            return
        result.inbound.append(
            InboundMessage(
                contact_address=contact,
                provider_message_id=mid,
                content=_messaging_content(message),
                occurred_at=occurred_at,
                is_echo=is_echo,
            )
        )


def _messaging_content(message: dict[str, Any]) -> str:
    """The text, else a summary of the attachments (``[image]``, ``[file] report.pdf``…)."""
    text = message.get("text")
    parts = [text] if isinstance(text, str) and text else []
    attachments = message.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict):
            continue
        kind = attachment.get("type")
        label = f"[{kind}]" if isinstance(kind, str) and kind else "[attachment]"
        payload = attachment.get("payload")
        title = attachment.get("title") or (
            payload.get("title") if isinstance(payload, dict) else None
        )
        if not parts or parts[-1] != label or title:
            parts.append(f"{label} {title}" if isinstance(title, str) and title else label)
    if not parts and isinstance(message.get("sticker_id"), int):
        parts.append("[sticker]")
    return " ".join(parts) if parts else "[unsupported]"


def messaging_message_body(message: OutgoingMessage) -> dict[str, Any]:
    """Build the Send API JSON for Messenger/Instagram.

    Free text is a ``RESPONSE`` inside the 24-hour window. A template is a tagged message
    sent outside it: ``template["tag"]`` (default ``HUMAN_AGENT``, the 7-day human support tag)
    with ``template["text"]`` (or the message content), or a structured Messenger template
    when ``template["payload"]`` is given.
    """
    body: dict[str, Any] = {"recipient": {"id": message.to}}
    if message.template:
        template = message.template
        body["messaging_type"] = "MESSAGE_TAG"
        body["tag"] = template.get("tag") or "HUMAN_AGENT"
        if isinstance(template.get("payload"), dict):
            body["message"] = {"attachment": {"type": "template", "payload": template["payload"]}}
        else:
            body["message"] = {"text": template.get("text") or message.content}
    else:
        body["messaging_type"] = "RESPONSE"
        body["message"] = {"text": message.content}
    return body


def messaging_message_id(body: Any) -> str:
    message_id = body.get("message_id") if isinstance(body, dict) else None
    return message_id if isinstance(message_id, str) else ""


# Messenger/Instagram Send API errors (reference §4.4); ``code/subcode`` keys are more specific.
GRAPH_MESSAGING_ERRORS: dict[str, ErrorInfo] = {
    "2": _info(
        "Temporary send failure",
        "Meta could not send the message right now (this is also reported when the person "
        "has blocked the Page).",
        "It will be retried; if it keeps failing the person may have blocked the Page.",
        permanent=False,
    ),
    "4": _info(
        "Application rate limit reached",
        "The app made too many calls.",
        "Sending slows down and retries automatically.",
        permanent=False,
    ),
    "613": _info(
        "Rate limit reached",
        "Too many messages were sent in a short time.",
        "Sending slows down and retries automatically.",
        permanent=False,
    ),
    "10": _info(
        "Permission denied",
        "The app may not send this message.",
        "Check the Page's messaging permissions.",
    ),
    "10/2018278": _info(
        "Outside the allowed messaging window",
        "More than 24 hours have passed since the person last wrote.",
        "Send a tagged message (template) instead of free text.",
    ),
    "100": _info(
        "Invalid parameter",
        "The request had a missing or invalid parameter.",
        "Check the recipient id and message content.",
    ),
    "100/2018001": _info(
        "No matching user found",
        "The recipient id does not belong to anyone this Page can message.",
        "Check the recipient id; it must be the id the Page received from this person.",
    ),
    "190": _info(
        "Access token expired or invalid",
        "The inbox's access token no longer works.",
        "An admin should update the access token in the inbox settings.",
    ),
    "200": _info(
        "Permission error",
        "The token lacks a permission needed to send messages.",
        "An admin should grant the messaging permission to the app.",
    ),
    "551": _info(
        "Person unavailable",
        "This person is not available to receive messages right now.",
        "Do not resend; try another channel.",
    ),
    # Common codes of Meta's public Send API error list beyond the reference (issue #9).
    "1200": _info(
        "Temporary send message failure",
        "Meta could not send the message right now.",
        "It will be retried automatically.",
        permanent=False,
    ),
    "10/2018108": _info(
        "Person cannot receive messages",
        "This person is not receiving messages from the Page right now.",
        "Do not resend; try another channel.",
    ),
}


# --------------------------------------------------------------------------------------------
# Sending: a JSON POST to a Graph-style API over the shared HTTP plumbing (``_http``).


def graph_error(
    body: dict[str, Any], catalogue: dict[str, ErrorInfo], *, with_subcode: bool
) -> tuple[str, str, str, bool]:
    """Return (code, title, detail, transient) from a Graph (or 360dialog) error body."""
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        code_text = str(code) if code is not None else ""
        subcode = error.get("error_subcode")
        specific = f"{code_text}/{subcode}" if subcode is not None else code_text
        info = catalogue.get(specific) or catalogue.get(code_text)
        if with_subcode and subcode is not None:
            code_text = specific
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        title = error.get("message") or (info.title if info else "")
        detail = details or error.get("error_user_msg") or ""
        transient = error.get("is_transient") is True or (info is not None and not info.permanent)
        return code_text, str(title), str(detail), transient
    errors = body.get("errors")  # 360dialog's On-Premise-style errors
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code_text = str(first.get("code", ""))
        info = catalogue.get(code_text)
        title = first.get("title") or (info.title if info else "")
        detail = first.get("details") or first.get("message") or ""
        return code_text, str(title), str(detail), info is not None and not info.permanent
    return "", "", "", False


def send_json(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    *,
    catalogue: dict[str, ErrorInfo],
    message_id_of: Callable[[Any], str],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    with_subcode: bool = False,
) -> SendResult:
    """POST a JSON message to a Meta-style API and map the answer to a ``SendResult``."""
    outcome = _http.exchange(client, "POST", url, json=payload, headers=headers, params=params)
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response)
    if response.is_success:
        return _http.accepted(response, body, message_id_of(body))
    code, title, detail, transient = graph_error(body, catalogue, with_subcode=with_subcode)
    return _http.refused(
        response,
        body,
        code or f"http_{response.status_code}",
        title,
        detail,
        transient=transient or _http.is_busy(response),
    )


def send_whatsapp(
    client: httpx.Client,
    url: str,
    message: OutgoingMessage,
    *,
    catalogue: dict[str, ErrorInfo],
    headers: dict[str, str],
) -> SendResult:
    """Send a WhatsApp text or template (Cloud API, directly or through 360dialog)."""
    return send_json(
        client,
        url,
        whatsapp_message_body(message),
        catalogue=catalogue,
        message_id_of=whatsapp_message_id,
        headers=headers,
    )


def send_messaging(
    client: httpx.Client,
    url: str,
    message: OutgoingMessage,
    *,
    catalogue: dict[str, ErrorInfo],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> SendResult:
    """Send a Messenger-platform message (Messenger, Instagram): errors keep their subcode."""
    return send_json(
        client,
        url,
        messaging_message_body(message),
        catalogue=catalogue,
        message_id_of=messaging_message_id,
        headers=headers,
        params=params,
        with_subcode=True,
    )
