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

The package: ``smtp`` (sending), ``bounces`` (reading them back), ``errors`` (the code table);
this module holds the webhook door (``verify``/``handshake``/``parse``) and the ``SPEC``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from statuses.providers.base import (
    ConfigSchema,
    HandshakeReply,
    ParseResult,
    ProviderSpec,
    WebhookRequest,
    channel,
    tokens_equal,
)
from statuses.providers.email.bounces import parse_raw_email
from statuses.providers.email.errors import ERRORS
from statuses.providers.email.smtp import message_id_for, send

__all__ = [
    "ERRORS",
    "SPEC",
    "handshake",
    "message_id_for",
    "parse",
    "parse_raw_email",
    "send",
    "verify",
]


TOKEN_HEADER = "x-webhook-token"


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Compare ``X-Webhook-Token`` with the inbox's ``webhook_token`` (constant time)."""
    return tokens_equal(request.headers.get(TOKEN_HEADER), config.get("webhook_token"))


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Read a bounce mail (the raw RFC 822 message is the request body)."""
    return parse_raw_email(request.body, request.received_at)


SPEC = ProviderSpec(
    name="email",
    channels=(channel("email", "EMAIL", "YNNY", "SMTP result, then bounces"),),
    config=ConfigSchema(
        required=("smtp_host", "smtp_port", "from_address", "webhook_token"),
        optional=("smtp_username", "smtp_password", "smtp_use_tls"),
        secret=frozenset({"webhook_token", "smtp_password"}),
    ),
    # The bounce relay proves itself with a token header, a credential: nothing to keep.
    kept_headers=frozenset(),
    idempotent_send=False,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
