"""Messenger-platform webhooks (Messenger, Instagram): ``entry[].messaging[]``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from statuses.machine import Status
from statuses.providers.base import (
    Deletion,
    InboundMessage,
    MalformedPayload,
    ParseResult,
    SkipKind,
    StatusUpdate,
    Watermark,
    WebhookRequest,
)
from statuses.providers.meta.wire import (
    as_list,
    as_object,
    as_text,
    load_json,
    millis,
    millis_to_datetime,
)


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
