"""Reading bounces back: RFC 3464 reports matched to our messages, then a careful heuristic."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from statuses import correlation
from statuses.machine import UNRECOGNIZED, Status
from statuses.providers.base import (
    MalformedPayload,
    ParseResult,
    SkipKind,
    StatusUpdate,
)
from statuses.providers.email.errors import ERRORS
from statuses.providers.email.smtp import CORRELATION_HEADER, MESSAGE_ID_DOMAIN, message_id_for

ACTION_MAP: dict[str, str] = {
    "failed": Status.FAILED,
    "delivered": Status.DELIVERED,
    "relayed": Status.DELIVERED,
    "expanded": Status.DELIVERED,
    "delayed": UNRECOGNIZED,  # still being retried: an event only
}

_PERMANENT_ENHANCED = re.compile(r"\b(5\.\d{1,3}\.\d{1,3})\b")
_PERMANENT_REPLY = re.compile(r"\b(55[0-4])\b")
_OUR_MESSAGE_ID = re.compile(r"<([^<>@\s]+)@" + MESSAGE_ID_DOMAIN + r">", re.IGNORECASE)
_VERP = re.compile(r"\+(" + re.escape(correlation.PREFIX) + r"\.[0-9a-f]{32}\.\d+)@", re.I)
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returned to sender|delivery status notification|"
    r"delivery failure|failure notice|could not be delivered|non-?delivery|"
    r"mail delivery (?:failed|failure|subsystem)",
    re.IGNORECASE,
)


def parse_raw_email(raw: bytes, received_at: datetime) -> ParseResult:
    """Turn a raw bounce mail into statuses of our messages; empty when it is not about one."""
    if not raw.strip():
        raise MalformedPayload("empty mail")
    try:
        mail = email.message_from_bytes(raw)
        if not mail.keys():
            raise MalformedPayload("not an RFC 822 message: no header fields")
        return _parse_mail(mail, received_at)
    except MalformedPayload:
        raise
    except Exception as exc:
        # The stdlib parser has rare bugs on hostile input; a mail we cannot read is malformed,
        # not a server error.
        raise MalformedPayload(f"unreadable mail: {type(exc).__name__}") from exc


def _parse_mail(mail: Message, received_at: datetime) -> ParseResult:
    report = _find_part(mail, "message/delivery-status")
    if report is None:
        return _heuristic(mail, received_at)

    blocks = report.get_payload()
    if not isinstance(blocks, list) or not blocks:
        blocks = _split_blocks(_part_text(report))
    per_message, per_recipient = blocks[0], blocks[1:]

    original = _original_headers(mail)
    message_id = _ours(_header(original, "Message-ID")) if original is not None else ""
    header_correlation = _correlation(_header(original, CORRELATION_HEADER) if original else "")
    envelope_correlation = _correlation(_xtext_decode(_header(per_message, "Original-Envelope-Id")))
    verp_correlation = _verp_correlation(mail)
    correlation_id = (
        header_correlation
        or envelope_correlation
        or verp_correlation
        or _correlation(_message_id_local(message_id))
    )
    if not message_id and correlation_id:
        message_id = message_id_for(correlation_id)
    if not message_id:
        return _ignored("a delivery report about no message Tickmark sent")

    default_time = _date(_header(per_message, "Arrival-Date")) or _date(mail.get("Date"))
    result = ParseResult()
    for block in per_recipient:
        action = _header(block, "Action").lower()
        if not action:
            result.skip(
                SkipKind.MALFORMED,
                "a per-recipient block of the delivery report has no Action",
                {key.lower(): str(value) for key, value in block.items()},
            )
            continue
        status_code = _header(block, "Status").split(" ")[0]
        recipient = _typed_value(_header(block, "Final-Recipient"))
        diagnostic = _typed_value(_header(block, "Diagnostic-Code"))
        occurred_at = _date(_header(block, "Last-Attempt-Date")) or default_time or received_at
        status = ACTION_MAP.get(action, UNRECOGNIZED)
        with_error = action in ("failed", "delayed")
        result.statuses.append(
            StatusUpdate(
                provider_message_id=message_id,
                status=status,
                raw_status=action,
                occurred_at=occurred_at,
                dedupe_key=f"{message_id}:{action}:{status_code}:{recipient.lower()}",
                correlation_id=correlation_id,
                error_code=status_code if with_error else "",
                error_title=_status_title(status_code) if with_error else "",
                error_detail=diagnostic if with_error else "",
                recipient=recipient,
                raw={key.lower(): str(value) for key, value in block.items()},
            )
        )
    return result


def _ignored(reason: str) -> ParseResult:
    """A readable mail with nothing to apply, recorded as such on its delivery (issue #9)."""
    result = ParseResult()
    result.skip(SkipKind.IGNORED, reason)
    return result


def _heuristic(mail: Message, received_at: datetime) -> ParseResult:
    if not _looks_like_bounce(mail):
        return _ignored("not a delivery report (no bounce sender, subject or report part)")
    text = "\n".join(_texts(mail))
    found = _OUR_MESSAGE_ID.search(text)
    if not found:
        return _ignored("a bounce that names no message Tickmark sent")
    message_id = message_id_for(found.group(1))
    code_match = _PERMANENT_ENHANCED.search(text) or _PERMANENT_REPLY.search(text)
    if not code_match:
        return _ignored("a bounce without a permanent failure code (a delay or a notice)")
    code = code_match.group(1)
    line_start = text.rfind("\n", 0, code_match.start()) + 1
    line_end = text.find("\n", code_match.end())
    line = text[line_start : line_end if line_end != -1 else len(text)].strip()
    recipient = next(
        (
            address
            for address in _ADDRESS.findall(line)
            if not address.lower().endswith("@" + MESSAGE_ID_DOMAIN)
        ),
        "",
    )
    return ParseResult(
        statuses=[
            StatusUpdate(
                provider_message_id=message_id,
                status=Status.FAILED,
                raw_status="failed",
                occurred_at=_date(mail.get("Date")) or received_at,
                dedupe_key=f"{message_id}:failed:{code}:{recipient.lower()}",
                correlation_id=_correlation(found.group(1)),
                error_code=code,
                error_title=_status_title(code),
                error_detail=line[:500],
                recipient=recipient,
                raw={"heuristic": True, "subject": str(mail.get("Subject", ""))},
            )
        ]
    )


def _looks_like_bounce(mail: Message) -> bool:
    sender = str(mail.get("From", "")).lower()
    if "mailer-daemon" in sender or "postmaster" in sender:
        return True
    if str(mail.get("Return-Path", "")).strip() == "<>":
        return True
    return bool(_BOUNCE_SUBJECT.search(str(mail.get("Subject", ""))))


def _find_part(mail: Message, content_type: str) -> Message | None:
    for part in _walk_outer(mail):
        if part.get_content_type() == content_type:
            return part
    return None


def _walk_outer(mail: Message) -> Iterator[Message]:
    """Yield the parts of ``mail`` without descending into attached messages or reports."""
    yield mail
    if mail.get_content_maintype() == "multipart" and isinstance(mail.get_payload(), list):
        for part in mail.get_payload():
            if isinstance(part, Message):
                yield from _walk_outer(part)


def _original_headers(mail: Message) -> Message | None:
    for part in _walk_outer(mail):
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            return HeaderParser().parsestr(_part_text(part))
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            return HeaderParser().parsestr(_part_text(part))
    return None


def _texts(mail: Message) -> Iterator[str]:
    """Yield every text part, and the headers of attached messages (heuristic search space)."""
    for part in _walk_outer(mail):
        if part is mail and mail.is_multipart():
            continue
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                for inner in payload:
                    if isinstance(inner, Message):
                        yield "\n".join(f"{k}: {v}" for k, v in inner.items())
                        yield from _texts(inner)
        elif part.get_content_maintype() == "text":
            yield _part_text(part)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    if isinstance(raw, list):
        return "\n\n".join(m.as_string() for m in raw if isinstance(m, Message))
    return str(raw or "")


def _split_blocks(text: str) -> list[Message]:
    parser = HeaderParser()
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [parser.parsestr(chunk) for chunk in chunks if chunk.strip()] or [Message()]


def _header(block: Message | None, name: str) -> str:
    if block is None:
        return ""
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _typed_value(value: str) -> str:
    """Strip the type of a DSN field: ``rfc822; a@b`` → ``a@b``, ``smtp; 550 …`` → ``550 …``."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


def _ours(message_id: str) -> str:
    found = _OUR_MESSAGE_ID.search(message_id)
    return message_id_for(found.group(1)) if found else ""


def _message_id_local(message_id: str) -> str:
    found = _OUR_MESSAGE_ID.search(message_id)
    return found.group(1) if found else ""


def _correlation(value: str) -> str:
    value = value.strip()
    return value if correlation.parse(value) is not None else ""


def _verp_correlation(mail: Message) -> str:
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To"):
        for value in mail.get_all(name) or []:
            found = _VERP.search(str(value))
            if found:
                return _correlation(found.group(1).lower())
    return ""


def _xtext_decode(value: str) -> str:
    """Decode RFC 3461 xtext (``+XX`` hex escapes)."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def _status_title(code: str) -> str:
    info = ERRORS.get(code)
    if info is None and code[:1] in ("4", "5"):
        info = ERRORS.get(f"{code[0]}.0.0") if "." in code else ERRORS.get(code)
    return info.title if info else (f"Delivery status {code}" if code else "Delivery failed")


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
