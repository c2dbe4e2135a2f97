"""Email over SMTP, with bounces read back (reference §11, DESIGN §4 note ²).

Sending talks to the inbox's SMTP server with ``smtplib`` directly — not Django's mail backend,
which drops the per-recipient refusals that ``sendmail`` reports. We run MAIL/RCPT/DATA
ourselves, so we know how far a failure got:

* before DATA (connection refused, auth failure, MAIL or RCPT refused, a disconnect): nothing was
  handed over — 4xx and connection problems are TRANSIENT, 5xx are REJECTED;
* if *any* recipient is refused we send RSET instead of DATA, so nobody gets the message: a
  message has one status, and "failed" must not hide that a copy went out (a resend would then
  reach the accepted recipients twice);
* a timeout or disconnect once DATA started is UNKNOWN (the server may have taken the message).

The ``Message-ID`` is ``<{correlation_id}@tickmark>`` and is the provider message id; the
correlation id also travels in ``X-Tickmark-Correlation``. With ``bounce_address`` in the config
(e.g. ``bounces@example.com``) the envelope sender is VERP-style,
``bounces+{correlation_id}@example.com``, so a bounce names the message in the address it is
sent to. We set no ``Return-Path`` header: the delivering MTA writes it from the envelope
sender. When the server offers DSN (RFC 3461) we also ask for ``ENVID={correlation_id}``, which
comes back as ``Original-Envelope-Id``, and ``RET=HDRS``.

Bounces (``parse``/``parse_raw_email``): an RFC 3464 report is matched to our message by, in
order, our Message-ID in the returned headers, ``X-Tickmark-Correlation`` there,
``Original-Envelope-Id``, or the VERP address the bounce was sent to. Reports that are not
RFC 3464 fall back to a heuristic: the mail must look like a bounce (from MAILER-DAEMON or
postmaster, a null Return-Path, or a bounce-like subject) and its text must quote one of our
Message-IDs and a permanent code (5.x.x, or 550 to 554). An ordinary reply that quotes our
Message-ID in ``In-Reply-To`` is therefore never read as a bounce. Nothing matched → an empty
result, not an error.

Optional config keys besides DESIGN §4.1: ``bounce_address``, ``smtp_timeout`` (seconds, 30).
Port 465 uses implicit TLS; ``smtp_use_tls`` asks for STARTTLS.
"""

from __future__ import annotations

import contextlib
import email
import hmac
import re
import smtplib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

import httpx

from statuses import correlation, netguard
from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import _http
from statuses.providers.base import (
    ConfigSchema,
    ErrorInfo,
    HandshakeReply,
    MalformedPayload,
    OutgoingMessage,
    ParseResult,
    ProviderSpec,
    SendOutcome,
    SendResult,
    SkipKind,
    StatusUpdate,
    WebhookRequest,
)

CHANNEL_TYPES: tuple[str, ...] = ("email",)

TOKEN_HEADER = "x-webhook-token"
CORRELATION_HEADER = "X-Tickmark-Correlation"
MESSAGE_ID_DOMAIN = "tickmark"
DEFAULT_TIMEOUT = 30.0
IMPLICIT_TLS_PORT = 465

ACTION_MAP: dict[str, str] = {
    "failed": Status.FAILED,
    "delivered": Status.DELIVERED,
    "relayed": Status.DELIVERED,
    "expanded": Status.DELIVERED,
    "delayed": UNRECOGNIZED,  # still being retried: an event only
}

_ENHANCED_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
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

ERRORS: dict[str, ErrorInfo] = {
    # SMTP reply codes (RFC 5321)
    "421": ErrorInfo(
        "Mail server unavailable",
        "The mail server is closing the connection for now (overloaded or shutting down).",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "450": ErrorInfo(
        "Mailbox temporarily unavailable",
        "The recipient's mailbox cannot take mail right now (busy, or greylisting).",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "451": ErrorInfo(
        "Temporary server error",
        "The mail server hit a local error while processing the message.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "452": ErrorInfo(
        "Server storage full",
        "The mail server has no room for the message right now.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "454": ErrorInfo(
        "TLS temporarily unavailable",
        "The server cannot start TLS or authentication right now.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "500": ErrorInfo(
        "Command not recognised",
        "The mail server did not understand a command.",
        "Check that the SMTP host and port point at a real SMTP server.",
    ),
    "501": ErrorInfo(
        "Invalid address or argument",
        "The mail server refused an address or argument as malformed.",
        "Check the recipient and sender addresses.",
    ),
    "503": ErrorInfo(
        "Bad command sequence",
        "The server expected another command first — often authentication.",
        "Set the SMTP username and password if this server requires login.",
    ),
    "530": ErrorInfo(
        "Authentication required",
        "The mail server only accepts mail from authenticated senders.",
        "Set the SMTP username and password in the inbox settings.",
    ),
    "535": ErrorInfo(
        "SMTP login failed",
        "The mail server rejected the username or password.",
        "Check the SMTP username and password in the inbox settings (some providers need an "
        "app password).",
    ),
    "550": ErrorInfo(
        "Mailbox unavailable",
        "The receiving server refused the message for this address (unknown user, or policy).",
        "Check the address; read the detail for the server's reason.",
    ),
    "551": ErrorInfo(
        "User not local",
        "The receiving server does not handle mail for this address.",
        "Check the recipient's address.",
    ),
    "552": ErrorInfo(
        "Storage exceeded",
        "The recipient's mailbox is full or the message is too large.",
        "Send a smaller message, or reach the contact another way.",
    ),
    "553": ErrorInfo(
        "Mailbox name not allowed",
        "The address is not valid, or the server will not relay for our sender address.",
        "Check the recipient and the inbox's from address.",
    ),
    "554": ErrorInfo(
        "Transaction failed",
        "The server refused the message, often as spam or by policy.",
        "Read the detail for the server's reason.",
    ),
    "555": ErrorInfo(
        "Parameters not recognised",
        "The server refused a MAIL or RCPT parameter.",
        "Check the addresses; report this if it persists.",
    ),
    # Enhanced status codes (RFC 3463)
    "4.0.0": ErrorInfo(
        "Temporary delivery problem",
        "Delivery failed for now; the server did not say why.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "5.0.0": ErrorInfo(
        "Delivery failed",
        "Delivery failed permanently; the server did not give a specific reason.",
        "Read the detail for the server's text.",
    ),
    "5.1.0": ErrorInfo(
        "Bad address",
        "Something is wrong with the recipient's address.",
        "Check the address for typos.",
    ),
    "5.1.1": ErrorInfo(
        "Mailbox does not exist",
        "The recipient's mail server says there is no such user at this address.",
        "Check the address for typos; stop sending to it if it is right.",
    ),
    "5.1.2": ErrorInfo(
        "Domain does not exist",
        "The part after the @ does not name a domain that receives mail.",
        "Check the domain of the address for typos.",
    ),
    "5.1.3": ErrorInfo(
        "Invalid address syntax",
        "The recipient's address is not a valid email address.",
        "Correct the address.",
    ),
    "5.1.10": ErrorInfo(
        "Domain accepts no mail",
        "The recipient's domain publishes a null MX: it receives no email at all.",
        "Ask the contact for another address.",
    ),
    "5.2.1": ErrorInfo(
        "Mailbox disabled",
        "The recipient's mailbox exists but no longer accepts mail.",
        "Ask the contact for another address.",
    ),
    "4.2.2": ErrorInfo(
        "Mailbox full",
        "The recipient's mailbox is full for now.",
        "Tickmark retries automatically; the contact needs to free some space.",
        permanent=False,
    ),
    "5.2.2": ErrorInfo(
        "Mailbox full",
        "The recipient's mailbox is full and the server gave up.",
        "Try again later or reach the contact another way.",
    ),
    "5.2.3": ErrorInfo(
        "Message too large",
        "The message is larger than the recipient's server accepts.",
        "Send a smaller message.",
    ),
    "5.3.4": ErrorInfo(
        "Message too big for the system",
        "The message exceeds a size limit of the receiving system.",
        "Send a smaller message.",
    ),
    "4.4.1": ErrorInfo(
        "No answer from the recipient's server",
        "The recipient's mail server did not answer.",
        "Tickmark's mail server keeps retrying.",
        permanent=False,
    ),
    "5.4.1": ErrorInfo(
        "Recipient address rejected",
        "The recipient's server refused the address (access denied or no such domain route).",
        "Check the address.",
    ),
    "5.4.4": ErrorInfo(
        "Unable to route",
        "No mail server could be found for the recipient's domain.",
        "Check the domain of the address.",
    ),
    "4.4.7": ErrorInfo(
        "Delivery time expired",
        "The mail server kept trying but could not deliver before giving up.",
        "The recipient's server may be down; try again later or use another channel.",
    ),
    "5.4.7": ErrorInfo(
        "Delivery time expired",
        "The message could not be delivered in time.",
        "Try again later or use another channel.",
    ),
    "5.5.0": ErrorInfo(
        "Protocol error",
        "The mail servers disagreed about the SMTP conversation.",
        "Read the detail; report it if it persists.",
    ),
    "4.7.0": ErrorInfo(
        "Temporarily refused by policy",
        "The recipient's server deferred the message (rate limit or greylisting).",
        "Tickmark's mail server retries.",
        permanent=False,
    ),
    "5.7.0": ErrorInfo(
        "Refused by security policy",
        "The recipient's server refused the message for a security reason.",
        "Read the detail for the server's reason.",
    ),
    "5.7.1": ErrorInfo(
        "Delivery not authorised",
        "The recipient's server refused the message by policy — often spam filtering, or the "
        "sender is not allowed to relay.",
        "Read the detail; check the sender address and the message content.",
    ),
    "5.7.8": ErrorInfo(
        "Authentication credentials invalid",
        "The mail server rejected the SMTP login.",
        "Check the SMTP username and password.",
    ),
    "5.7.26": ErrorInfo(
        "Sender authentication failed",
        "The recipient's provider refused the message because it failed SPF, DKIM or DMARC "
        "checks for the sender's domain.",
        "Set up SPF, DKIM and DMARC for the from address's domain.",
    ),
    # Tickmark's own conditions
    "invalid_message": ErrorInfo(
        "Message cannot be sent as email",
        "An address or the subject is not valid in an email header.",
        "Check the recipient address and subject.",
    ),
    "tls_failed": ErrorInfo(
        "TLS with the mail server failed",
        "The mail server does not offer STARTTLS or its certificate is not trusted.",
        "Check the SMTP host, port and TLS setting.",
    ),
    **_http.transport_errors(
        "the mail server",
        reach="the SMTP server",
        connect_hint="Tickmark retries automatically; check the SMTP host and port if it persists.",
        lost_answer="The message was being handed over when the connection broke, so it may have "
        "gone out.",
        lost_answer_hint="Check with the contact before resending, to avoid a duplicate.",
    ),
}


class _Stop(Exception):
    """Carry a finished SendResult out of the SMTP dialogue (never escapes ``send``)."""

    def __init__(self, result: SendResult) -> None:
        self.result = result


def message_id_for(correlation_id: str) -> str:
    """Return the Message-ID (and provider message id) of a message attempt."""
    return f"<{correlation_id}@{MESSAGE_ID_DOMAIN}>"


def envelope_sender(config: dict[str, Any], correlation_id: str) -> str:
    """Return the SMTP envelope sender: the VERP bounce address when one is configured."""
    bounce = str(config.get("bounce_address") or "")
    local, at, domain = bounce.rpartition("@")
    if at and local and domain:
        return f"{local}+{correlation_id}@{domain}"
    return parseaddr(str(config.get("from_address", "")))[1]


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Compare ``X-Webhook-Token`` with the inbox's ``webhook_token`` (constant time)."""
    token = config.get("webhook_token") or ""
    supplied = request.headers.get(TOKEN_HEADER)
    if not token or not supplied:
        return False
    return hmac.compare_digest(supplied.encode("utf-8", "replace"), str(token).encode())


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Read a bounce mail (the raw RFC 822 message is the request body)."""
    return parse_raw_email(request.body, request.received_at)


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


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Hand the message to the inbox's SMTP server. ``client`` is unused (no HTTP here)."""
    try:
        mail, recipients = _build(config, message)
    except ValueError as exc:
        return _result(SendOutcome.REJECTED, "invalid_message", str(exc))
    if not recipients:
        return _result(SendOutcome.REJECTED, "invalid_message", "no recipient address")

    host = str(config.get("smtp_host", ""))
    port = int(config.get("smtp_port") or 25)
    timeout = float(config.get("smtp_timeout") or DEFAULT_TIMEOUT)
    try:
        # Only public addresses, checked on the resolved address (issue #10).
        if port == IMPLICIT_TLS_PORT:
            smtp: smtplib.SMTP = netguard.SMTP_SSL(host, port, timeout=timeout)
        else:
            smtp = netguard.SMTP(host, port, timeout=timeout)
    except smtplib.SMTPConnectError as exc:
        return _reply_failure(exc.smtp_code, exc.smtp_error)
    except (ssl.SSLError, ssl.CertificateError) as exc:
        return _result(SendOutcome.REJECTED, "tls_failed", str(exc))
    except OSError:
        # Refused, unreachable or a blocked address: the same words, no errno (issue #10).
        return _result(SendOutcome.TRANSIENT, "connection_failed", netguard.CONNECTION_FAILED)

    try:
        return _transaction(smtp, config, message, mail, recipients)
    except _Stop as stop:
        return stop.result
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


# --- sending -----------------------------------------------------------------------------


def _build(config: dict[str, Any], message: OutgoingMessage) -> tuple[EmailMessage, list[str]]:
    recipients = [addr for _, addr in getaddresses([message.to]) if addr]
    mail = EmailMessage()
    mail["From"] = str(config.get("from_address", ""))
    mail["To"] = message.to
    mail["Subject"] = message.subject or _default_subject(message.content)
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id_for(message.correlation_id)
    mail[CORRELATION_HEADER] = message.correlation_id
    mail.set_content(message.content)
    return mail, recipients


def _default_subject(content: str) -> str:
    first_line = next((line.strip() for line in content.splitlines() if line.strip()), "")
    if not first_line:
        return "New message"
    return first_line if len(first_line) <= 60 else first_line[:57].rstrip() + "…"


def _transaction(
    smtp: smtplib.SMTP,
    config: dict[str, Any],
    message: OutgoingMessage,
    mail: EmailMessage,
    recipients: list[str],
) -> SendResult:
    # Everything up to DATA hands nothing over: a broken connection there is TRANSIENT.
    try:
        smtp.ehlo_or_helo_if_needed()
        if config.get("smtp_use_tls") and _is_plain(smtp):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.get("smtp_username"):
            smtp.login(str(config["smtp_username"]), str(config.get("smtp_password", "")))
        mail_options: list[str] = []
        rcpt_options: list[str] = []
        if smtp.has_extn("dsn"):
            mail_options = ["RET=HDRS", f"ENVID={message.correlation_id}"]
            rcpt_options = ["NOTIFY=FAILURE,DELAY"]
        code, reply = smtp.mail(envelope_sender(config, message.correlation_id), mail_options)
        if code != 250:
            _reset(smtp)
            raise _Stop(_reply_failure(code, reply))
        refused: dict[str, tuple[int, bytes]] = {}
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient, rcpt_options)
            if code not in (250, 251):
                refused[recipient] = (code, reply)
        if refused:
            _reset(smtp)  # nobody gets it unless everybody can
            raise _Stop(_refusal(refused))
    except smtplib.SMTPAuthenticationError as exc:
        code = str(exc.smtp_code or 535)
        info = ERRORS.get(code, ERRORS["535"])
        raise _Stop(
            SendResult(
                SendOutcome.REJECTED,
                error_code=code,
                error_title=info.title,
                error_detail=f"{code} {_text(exc.smtp_error)}",
            )
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise _Stop(_result(SendOutcome.REJECTED, "tls_failed", str(exc))) from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise _Stop(
            _result(SendOutcome.TRANSIENT, "connection_failed", netguard.CONNECTION_FAILED)
        ) from exc
    except smtplib.SMTPResponseException as exc:  # HELO refused, STARTTLS refused …
        raise _Stop(_reply_failure(exc.smtp_code, exc.smtp_error)) from exc
    except ssl.SSLCertVerificationError as exc:
        raise _Stop(_result(SendOutcome.REJECTED, "tls_failed", str(exc))) from exc
    except OSError as exc:
        raise _Stop(
            _result(SendOutcome.TRANSIENT, "connection_failed", netguard.CONNECTION_FAILED)
        ) from exc

    try:
        code, reply = smtp.data(mail.as_bytes(policy=SMTP))
    except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing was transmitted
        raise _Stop(_reply_failure(exc.smtp_code, exc.smtp_error)) from exc
    except OSError as exc:  # includes SMTPServerDisconnected and timeouts
        raise _Stop(_result(SendOutcome.UNKNOWN, "no_response", "no answer after DATA")) from exc
    if code != 250:
        raise _Stop(_reply_failure(code, reply))
    return SendResult(
        SendOutcome.ACCEPTED,
        provider_message_id=message_id_for(message.correlation_id),
        status=Status.SENT,
        raw={"reply": f"{code} {_text(reply)}", "recipients": recipients},
    )


def _is_plain(smtp: smtplib.SMTP) -> bool:
    return not isinstance(smtp, smtplib.SMTP_SSL)


def _reset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.rset()


def _refusal(refused: dict[str, tuple[int, bytes]]) -> SendResult:
    # Report the first permanent refusal (or the first one if all are temporary), name them all.
    permanent = {r: v for r, v in refused.items() if v[0] >= 500}
    recipient, (code, reply) = next(iter((permanent or refused).items()))
    detail = "; ".join(f"{r}: {c} {_text(t)}" for r, (c, t) in refused.items())
    result = _reply_failure(code, reply)
    return SendResult(
        SendOutcome.REJECTED if permanent else SendOutcome.TRANSIENT,
        error_code=result.error_code,
        error_title=result.error_title,
        error_detail=f"Refused recipient(s) — {detail}",
        raw={"refused": {r: [c, _text(t)] for r, (c, t) in refused.items()}, "first": recipient},
    )


def _reply_failure(code: int | None, reply: bytes | str) -> SendResult:
    text = _text(reply)
    reply_code = str(code) if code and code > 0 else ""
    enhanced = _ENHANCED_CODE.search(text)
    error_code = enhanced.group(1) if enhanced else reply_code
    transient = reply_code.startswith("4") or error_code.startswith("4")
    if error_code == "4.4.7":  # "expired" is final however it is worded
        transient = False
    info = ERRORS.get(error_code) or ERRORS.get(reply_code)
    return SendResult(
        SendOutcome.TRANSIENT if transient else SendOutcome.REJECTED,
        error_code=error_code or "connection_failed",
        error_title=info.title if info else f"SMTP error {reply_code}",
        error_detail=f"{reply_code} {text}".strip(),
    )


def _result(outcome: SendOutcome, code: str, detail: str) -> SendResult:
    return SendResult(outcome, error_code=code, error_title=ERRORS[code].title, error_detail=detail)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --- bounces -----------------------------------------------------------------------------


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


SPEC = ProviderSpec(
    name="email",
    channel_types=CHANNEL_TYPES,
    config=ConfigSchema(
        required=("smtp_host", "smtp_port", "from_address", "webhook_token"),
        optional=("smtp_username", "smtp_password", "smtp_use_tls"),
        secret=frozenset({"webhook_token", "smtp_password"}),
    ),
    # The bounce relay proves itself with a token header, a credential: nothing to keep.
    kept_headers=frozenset(),
    idempotent_send=False,
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
