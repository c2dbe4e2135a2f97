"""Email through the whole pipeline: ``message_create_outgoing`` on an ``email`` inbox, the
worker's ``sending.message_send`` against a real SMTP server (aiosmtpd on a local port), then a
bounce (RFC 3464) posted to the inbox's webhook URL."""

from __future__ import annotations

import contextlib
import email
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from inbox.views.presenters import error_info
from statuses import correlation, outbound, sending
from statuses.machine import Status
from statuses.models import SendTry, StatusEvent
from statuses.providers import email as email_provider

pytestmark = pytest.mark.django_db

TOKEN = "bounce-hook-token"
TITLES = {code: info.title for code, info in email_provider.ERRORS.items()}


class Mailbox:
    """An SMTP server's handler: keeps every mail it takes, refuses the listed recipients."""

    def __init__(self, refuse: dict[str, str] | None = None):
        self.refuse = refuse or {}
        self.received: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope)
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def smtp_server(mailbox: Mailbox, **options):
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def email_inbox(make_inbox, account, port, **config):
    return make_inbox(
        account,
        "email",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout=5,
        from_address="Acme Support <support@acme.example>",
        webhook_token=TOKEN,
        **config,
    )


def create_and_send(inbox, to):
    message, created = outbound.message_create_outgoing(
        account=inbox.account, inbox=inbox, to=to, content="Your order shipped.\nThanks!"
    )
    assert created and message.status == Status.QUEUED
    outcome = sending.message_send(message_id=message.id, attempt=message.attempt)
    message.refresh_from_db()
    return message, outcome


def dsn(message_id: str, recipient: str, status: str = "5.1.1") -> bytes:
    """A bounce as Postfix writes it: RFC 3464, the original's headers returned."""
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        "To: support@acme.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Thu, 01 Jan 2026 00:10:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n'
        "\r\n"
        "--B0UND\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Your message could not be delivered to one or more recipients.\r\n"
        "--B0UND\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: "
        "User unknown in virtual mailbox table\r\n"
        "\r\n"
        "--B0UND\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        "From: Acme Support <support@acme.example>\r\n"
        f"To: {recipient}\r\n"
        f"Message-ID: {message_id}\r\n"
        "\r\n"
        "--B0UND--\r\n"
    ).encode()


def post_bounce(client, inbox, raw: bytes, token: str = TOKEN):
    return client.post(
        inbox.webhook_path, raw, content_type="message/rfc822", HTTP_X_WEBHOOK_TOKEN=token
    )


def test_accepted_mail_is_sent_with_our_message_id(account, make_inbox):
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        inbox = email_inbox(make_inbox, account, port)
        message, outcome = create_and_send(inbox, "ada@example.org")

    assert outcome == "accepted"
    assert message.status == Status.SENT
    our_id = f"<{correlation.make(message.id, 1)}@tickmark>"
    assert message.provider_message_id == our_id
    (envelope,) = mailbox.received  # exactly one mail
    assert envelope.mail_from == "support@acme.example"
    assert envelope.rcpt_tos == ["ada@example.org"]
    mail = email.message_from_bytes(envelope.content)
    assert mail["Message-ID"] == our_id
    assert mail["Subject"] == "Your order shipped."
    (send_try,) = SendTry.objects.filter(message=message)
    assert (send_try.outcome, send_try.provider_message_id) == ("accepted", our_id)


def test_refused_recipient_fails_with_the_code_and_catalogue_title(account, make_inbox):
    mailbox = Mailbox(refuse={"ghost@example.org": "550 5.1.1 <ghost@example.org>: User unknown"})
    with smtp_server(mailbox) as port:
        inbox = email_inbox(make_inbox, account, port)
        message, outcome = create_and_send(inbox, "ghost@example.org")

    assert outcome == "rejected"
    assert message.status == Status.FAILED
    assert message.error_code == "5.1.1"
    assert message.error_title == TITLES["5.1.1"] == "Mailbox does not exist"
    assert "550" in message.error_detail and "ghost@example.org" in message.error_detail
    assert mailbox.received == []


def test_one_refused_recipient_of_two_fails_it_and_nobody_gets_a_copy(account, make_inbox):
    mailbox = Mailbox(refuse={"ghost@example.org": "550 5.1.1 User unknown"})
    with smtp_server(mailbox) as port:
        inbox = email_inbox(make_inbox, account, port)
        message, outcome = create_and_send(inbox, "ada@example.org, ghost@example.org")

    assert outcome == "rejected"
    assert message.status == Status.FAILED
    assert message.error_code == "5.1.1"
    assert message.error_title == TITLES["5.1.1"]
    assert "ghost@example.org: 550" in message.error_detail
    assert mailbox.received == []  # RSET instead of DATA: ada got nothing either


def test_authentication_failure_fails_with_535_and_a_hint(account, make_inbox):
    def deny(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    mailbox = Mailbox()
    with smtp_server(mailbox, authenticator=deny, auth_require_tls=False) as port:
        inbox = email_inbox(
            make_inbox, account, port, smtp_username="support", smtp_password="wrong"
        )
        message, outcome = create_and_send(inbox, "ada@example.org")

    assert outcome == "rejected"
    assert message.status == Status.FAILED
    assert message.error_code == "535"
    assert message.error_title == TITLES["535"] == "SMTP login failed"
    shown = error_info(message)  # what the inbox shows the agent
    assert "password" in shown["hint"]
    assert mailbox.received == []
    assert SendTry.objects.get(message=message).outcome == "rejected"  # not retried


def test_bounce_posted_to_the_webhook_fails_the_sent_message(account, make_inbox, client):
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        inbox = email_inbox(make_inbox, account, port)
        message, _ = create_and_send(inbox, "ghost@example.org")
    assert message.status == Status.SENT
    bounce = dsn(message.provider_message_id, "ghost@example.org")

    assert post_bounce(client, inbox, bounce, token="wrong-token").status_code == 403
    message.refresh_from_db()
    assert message.status == Status.SENT

    assert post_bounce(client, inbox, bounce).status_code == 200
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == "5.1.1"
    assert message.error_title == TITLES["5.1.1"]
    assert message.failed_at is not None
    events = StatusEvent.objects.filter(message=message).order_by("id")
    assert [(e.source, e.status) for e in events] == [("send", "sent"), ("webhook", "failed")]

    assert post_bounce(client, inbox, bounce).status_code == 200  # the same bounce again
    assert StatusEvent.objects.filter(message=message).count() == 2
