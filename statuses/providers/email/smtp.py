"""Sending over SMTP: our own MAIL/RCPT/DATA dialogue, so we know how far a failure got."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, parseaddr
from typing import Any

import httpx

from statuses import netguard
from statuses.machine import Status
from statuses.providers.base import (
    OutgoingMessage,
    SendOutcome,
    SendResult,
)
from statuses.providers.email.errors import ENHANCED_CODE, ERRORS

CORRELATION_HEADER = "X-Tickmark-Correlation"
MESSAGE_ID_DOMAIN = "tickmark"
DEFAULT_TIMEOUT = 30.0
IMPLICIT_TLS_PORT = 465


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
    enhanced = ENHANCED_CODE.search(text)
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
