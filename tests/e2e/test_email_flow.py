"""Email end to end: a real ``manage.py worker`` hands the message to a real SMTP server
(aiosmtpd), then a bounce posted to the live server's webhook URL fails it."""

from __future__ import annotations

import httpx
import pytest

from inbox.models import Inbox, Message
from statuses import outbound
from statuses.machine import Status
from tests.e2e.conftest import wait_for
from tests.sending.test_email_send import TOKEN, Mailbox, dsn, smtp_server

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_sends_over_smtp_and_a_bounce_fails_it(account, stack):
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        inbox = Inbox.objects.create(
            account=account,
            name="Support mail",
            channel_type="email",
            config={
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_timeout": 5,
                "from_address": "Acme Support <support@acme.example>",
                "webhook_token": TOKEN,
            },
        )
        message, _ = outbound.message_create_outgoing(
            account=account, inbox=inbox, to="ghost@example.org", content="Your order shipped."
        )

        def state():
            return Message.objects.values_list("status", "provider_message_id").get(id=message.id)

        wait_for(lambda: state()[0] == Status.SENT, message=lambda: f"sent: {state()}")
    assert len(mailbox.received) == 1
    provider_id = state()[1]
    assert provider_id.endswith("@tickmark>")

    response = httpx.post(
        stack.public_url + inbox.webhook_path,
        content=dsn(provider_id, "ghost@example.org"),
        headers={"Content-Type": "message/rfc822", "X-Webhook-Token": TOKEN},
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "5.1.1")
