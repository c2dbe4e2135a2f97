"""WhatsApp webhooks: ``entry[].changes[].value`` with ``statuses[]`` and ``messages[]``."""

from __future__ import annotations

import re
from typing import Any

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers.base import (
    Deletion,
    ErrorInfo,
    InboundMessage,
    MalformedPayload,
    ParseResult,
    SkipKind,
    StatusUpdate,
    WebhookRequest,
)
from statuses.providers.meta.errors import WHATSAPP_ERRORS, whatsapp_error
from statuses.providers.meta.parse_templates import FIELDS as TEMPLATE_FIELDS
from statuses.providers.meta.parse_templates import parse_template_change
from statuses.providers.meta.wire import as_list, as_object, as_text, load_json, seconds_to_datetime

WHATSAPP_STATUSES: dict[str, str] = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "played": Status.READ,  # a voice message played is a voice message read (DESIGN §3.1)
    "failed": Status.FAILED,
}


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
                elif field in TEMPLATE_FIELDS:
                    parse_template_change(field, change, str(entry.get("id", "")), part)
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
