import asyncio
import contextlib
import email
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from hypothesis import given, settings
from hypothesis import strategies as st

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import email as email_provider
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.providers.chat_support import (
    CORRELATION_ID,
    RECEIVED_AT,
    outgoing,
    refused_port,
    request,
)

OUR_MESSAGE_ID = f"<{CORRELATION_ID}@tickmark>"
CONFIG = {
    "smtp_host": "127.0.0.1",
    "smtp_port": 25,
    "from_address": "Acme Support <support@acme.example>",
    "webhook_token": "hook-token",
}


# --- a real SMTP server -------------------------------------------------------------------


class Handler:
    def __init__(self, refuse=(), data_delay=0.0, data_reply=None):
        self.refuse = dict(refuse)
        self.data_delay = data_delay
        self.data_reply = data_reply
        self.received = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope)
        return "250 2.0.0 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server(handler, **kwargs):
    controller = Controller(handler, hostname="127.0.0.1", port=refused_port(), **kwargs)
    controller.start()
    try:
        yield {**CONFIG, "smtp_port": controller.port}
    finally:
        controller.stop()


def send(config, **message):
    return email_provider.send(None, config, outgoing(**message))


def test_send_accepted_with_our_message_id():
    handler = Handler()
    with smtp_server(handler) as config:
        result = send(config, to="ada@example.org", content="Your order shipped.")
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.status == Status.SENT
    assert result.provider_message_id == OUR_MESSAGE_ID
    (envelope,) = handler.received
    assert envelope.mail_from == "support@acme.example"
    assert envelope.rcpt_tos == ["ada@example.org"]
    mail = email.message_from_bytes(envelope.content)
    assert mail["Message-ID"] == OUR_MESSAGE_ID
    assert mail["X-Tickmark-Correlation"] == CORRELATION_ID
    assert mail["To"] == "ada@example.org"
    assert mail["From"] == "Acme Support <support@acme.example>"
    assert mail["Subject"] == "Your order shipped."
    assert "Your order shipped." in mail.get_payload()


def test_send_uses_subject_and_verp_envelope_sender():
    handler = Handler()
    with smtp_server(handler) as config:
        config["bounce_address"] = "bounces@acme.example"
        result = send(config, to="ada@example.org", subject="Invoice 42")
    assert result.outcome == SendOutcome.ACCEPTED
    (envelope,) = handler.received
    assert envelope.mail_from == f"bounces+{CORRELATION_ID}@acme.example"
    assert email.message_from_bytes(envelope.content)["Subject"] == "Invoice 42"


def test_refused_recipient_is_rejected_with_its_code():
    handler = Handler(refuse={"ghost@example.org": "550 5.1.1 <ghost@example.org>: User unknown"})
    with smtp_server(handler) as config:
        result = send(config, to="ghost@example.org")
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "5.1.1"
    assert result.error_title == email_provider.ERRORS["5.1.1"].title
    assert "ghost@example.org" in result.error_detail and "550" in result.error_detail
    assert handler.received == []


def test_partial_refusal_is_rejected_and_nobody_gets_a_copy():
    handler = Handler(refuse={"ghost@example.org": "550 5.1.1 User unknown"})
    with smtp_server(handler) as config:
        result = send(config, to="ada@example.org, ghost@example.org")
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "5.1.1"
    assert "ghost@example.org: 550" in result.error_detail
    assert "ada@example.org" not in result.error_detail
    assert result.raw["refused"] == {"ghost@example.org": [550, "5.1.1 User unknown"]}
    assert handler.received == []  # RSET instead of DATA


def test_temporary_refusal_is_transient():
    handler = Handler(refuse={"busy@example.org": "450 4.2.1 Mailbox busy, try later"})
    with smtp_server(handler) as config:
        result = send(config, to="busy@example.org")
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error_code == "4.2.1"


def test_data_refused_is_rejected():
    handler = Handler(data_reply="554 5.7.1 Message rejected as spam")
    with smtp_server(handler) as config:
        result = send(config, to="ada@example.org")
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "5.7.1"


def test_authentication_failure_is_rejected_with_535():
    def deny(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    with smtp_server(Handler(), authenticator=deny, auth_require_tls=False) as config:
        config.update(smtp_username="support", smtp_password="wrong")
        result = send(config, to="ada@example.org")
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "535"
    assert "password" in email_provider.ERRORS["535"].hint


def test_authentication_success_sends():
    def allow(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.password == b"right")

    handler = Handler()
    with smtp_server(handler, authenticator=allow, auth_require_tls=False) as config:
        config.update(smtp_username="support", smtp_password="right")
        result = send(config, to="ada@example.org")
    assert result.outcome == SendOutcome.ACCEPTED
    assert len(handler.received) == 1


def test_connection_refused_is_transient():
    result = send({**CONFIG, "smtp_port": refused_port()}, to="ada@example.org")
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.error_code == "connection_failed"


def test_timeout_after_data_is_unknown():
    handler = Handler(data_delay=2.0)
    with smtp_server(handler) as config:
        config["smtp_timeout"] = 0.5
        result = send(config, to="ada@example.org")
    assert result.outcome == SendOutcome.UNKNOWN
    assert result.error_code == "no_response"


@pytest.mark.parametrize("to", ["", "ada@example.org\r\nBcc: eve@example.org"])
def test_invalid_recipient_is_rejected_without_connecting(to):
    result = send({**CONFIG, "smtp_port": refused_port()}, to=to)
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "invalid_message"


# --- bounces ------------------------------------------------------------------------------


def dsn(
    action="failed",
    status="5.1.1",
    diagnostic="smtp; 550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown",
    original=None,
    envelope_id=None,
    to=None,
):
    original = original or (
        f"From: support@acme.example\nTo: ghost@example.org\nSubject: Invoice 42\n"
        f"Message-ID: {OUR_MESSAGE_ID}\nX-Tickmark-Correlation: {CORRELATION_ID}\n"
    )
    envelope_line = f"Original-Envelope-Id: {envelope_id}\n" if envelope_id else ""
    return (
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        f"To: {to or 'support@acme.example'}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: Thu, 01 Jan 2026 00:10:00 +0000\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\n'
        "\n"
        "--BOUNDARY\n"
        "Content-Type: text/plain\n"
        "\n"
        "I'm sorry to have to inform you that your message could not be delivered.\n"
        "--BOUNDARY\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example.net\n"
        f"{envelope_line}"
        "Arrival-Date: Thu, 01 Jan 2026 00:00:00 +0000\n"
        "\n"
        "Final-Recipient: rfc822; ghost@example.org\n"
        "Original-Recipient: rfc822;ghost@example.org\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        "Remote-MTA: dns; mx.example.org\n"
        f"Diagnostic-Code: {diagnostic}\n"
        "Last-Attempt-Date: Thu, 01 Jan 2026 00:09:59 +0000\n"
        "\n"
        "--BOUNDARY\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        f"{original}"
        "--BOUNDARY--\n"
    ).encode()


def webhook(raw, token="hook-token"):
    return request(raw, {"X-Webhook-Token": token} if token is not None else {})


def test_verify_token():
    assert email_provider.verify(webhook(dsn()), CONFIG)
    assert not email_provider.verify(webhook(dsn(), "wrong"), CONFIG)
    assert not email_provider.verify(webhook(dsn(), None), CONFIG)
    assert not email_provider.verify(webhook(dsn()), {**CONFIG, "webhook_token": ""})
    assert email_provider.handshake(webhook(dsn()), CONFIG) is None


def test_hard_bounce_fails_the_message():
    (update,) = email_provider.parse(webhook(dsn()), CONFIG).statuses
    assert update.provider_message_id == OUR_MESSAGE_ID
    assert update.correlation_id == CORRELATION_ID
    assert update.status == Status.FAILED
    assert update.raw_status == "failed"
    assert update.error_code == "5.1.1"
    assert update.error_title == email_provider.ERRORS["5.1.1"].title
    assert update.error_detail == (
        "550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown"
    )
    assert update.recipient == "ghost@example.org"
    assert update.occurred_at == datetime(2026, 1, 1, 0, 9, 59, tzinfo=UTC)
    assert update.dedupe_key == f"{OUR_MESSAGE_ID}:failed:5.1.1:ghost@example.org"


def test_the_same_bounce_twice_has_one_dedupe_key():
    first = email_provider.parse_raw_email(dsn(), RECEIVED_AT).statuses[0]
    again = email_provider.parse_raw_email(dsn().replace(b"\n", b"\r\n"), RECEIVED_AT).statuses[0]
    assert first.dedupe_key == again.dedupe_key


def test_delayed_is_an_event_only():
    raw = dsn(action="delayed", status="4.4.1", diagnostic="smtp; 421 4.4.1 timed out")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.status == UNRECOGNIZED
    assert update.raw_status == "delayed"
    assert update.error_code == "4.4.1"


@pytest.mark.parametrize("action", ["delivered", "relayed"])
def test_delivered_and_relayed(action):
    raw = dsn(action=action, status="2.0.0", diagnostic="smtp; 250 2.0.0 OK")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.status == Status.DELIVERED
    assert update.error_code == ""


def test_expired_after_retries_is_failed():
    raw = dsn(status="4.4.7", diagnostic="X-Postfix; delivery temporarily suspended")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.status == Status.FAILED
    assert update.error_code == "4.4.7"


@pytest.mark.parametrize(
    ("code", "title_key"), [("5.7.26", "5.7.26"), ("5.2.2", "5.2.2"), ("5.9.99", "5.0.0")]
)
def test_titles_come_from_the_catalogue(code, title_key):
    (update,) = email_provider.parse_raw_email(dsn(status=code), RECEIVED_AT).statuses
    assert update.error_title == email_provider.ERRORS[title_key].title


def test_matched_by_envelope_id_when_headers_are_foreign():
    original = "Message-ID: <abc@other.example>\nSubject: hi\n"
    raw = dsn(original=original, envelope_id=CORRELATION_ID)
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.provider_message_id == OUR_MESSAGE_ID
    assert update.correlation_id == CORRELATION_ID


def test_matched_by_verp_address():
    original = "Subject: hi\n"
    raw = dsn(original=original, to=f"bounces+{CORRELATION_ID}@acme.example")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.provider_message_id == OUR_MESSAGE_ID


def test_matched_by_message_id_alone():
    raw = dsn(original=f"Message-ID: {OUR_MESSAGE_ID}\n")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.provider_message_id == OUR_MESSAGE_ID
    assert update.correlation_id == CORRELATION_ID


def test_attached_original_message_is_read():
    raw = dsn().replace(b"Content-Type: text/rfc822-headers", b"Content-Type: message/rfc822")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.provider_message_id == OUR_MESSAGE_ID


def test_report_about_someone_elses_message_matches_nothing():
    raw = dsn(original="Message-ID: <abc@other.example>\n")
    assert email_provider.parse_raw_email(raw, RECEIVED_AT).statuses == []


NON_RFC_BOUNCE = f"""From: MAILER-DAEMON@legacy.example.net
To: support@acme.example
Subject: Undelivered Mail Returned to Sender
Date: Thu, 01 Jan 2026 01:00:00 +0000

This is the mail system at host legacy.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<ghost@example.org>: host mx.example.org said: 550 5.1.1 <ghost@example.org>:
    Recipient address rejected: User unknown in virtual mailbox table

------ This is a copy of the message, including all the headers. ------

From: support@acme.example
To: ghost@example.org
Subject: Invoice 42
Message-ID: {OUR_MESSAGE_ID}

Your order shipped.
""".encode()


def test_non_rfc_bounce_via_the_heuristic():
    (update,) = email_provider.parse_raw_email(NON_RFC_BOUNCE, RECEIVED_AT).statuses
    assert update.provider_message_id == OUR_MESSAGE_ID
    assert update.correlation_id == CORRELATION_ID
    assert update.status == Status.FAILED
    assert update.error_code == "5.1.1"
    assert update.recipient == "ghost@example.org"
    assert update.occurred_at == datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    again = email_provider.parse_raw_email(NON_RFC_BOUNCE, RECEIVED_AT).statuses[0]
    assert again.dedupe_key == update.dedupe_key


def test_non_rfc_bounce_with_only_a_reply_code():
    raw = NON_RFC_BOUNCE.replace(b"550 5.1.1", b"550")
    (update,) = email_provider.parse_raw_email(raw, RECEIVED_AT).statuses
    assert update.error_code == "550"


def test_a_reply_quoting_our_message_is_not_a_bounce():
    raw = f"""From: Ada <ada@example.org>
To: support@acme.example
Subject: Re: Invoice 42
In-Reply-To: {OUR_MESSAGE_ID}
References: {OUR_MESSAGE_ID}

Thanks! Order 550 arrived. Quoting {OUR_MESSAGE_ID} error 5.1.1 for fun.
""".encode()
    assert email_provider.parse_raw_email(raw, RECEIVED_AT).statuses == []


def test_unrelated_mail_matches_nothing():
    raw = b"From: news@shop.example\nTo: support@acme.example\nSubject: Sale!\n\nBuy now.\n"
    result = email_provider.parse(webhook(raw), CONFIG)
    assert result.statuses == [] and result.watermarks == [] and result.inbound == []


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"just some words without headers"])
def test_malformed(raw):
    with pytest.raises(MalformedPayload):
        email_provider.parse(webhook(raw), CONFIG)


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_parse_arbitrary_bytes(raw):
    with contextlib.suppress(MalformedPayload):
        email_provider.parse(webhook(raw), CONFIG)


@given(st.data())
def test_parse_mutated_bounces(data):
    raw = bytearray(dsn())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MalformedPayload):
        email_provider.parse_raw_email(bytes(raw), RECEIVED_AT)
