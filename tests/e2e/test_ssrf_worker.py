"""SSRF at connect time, in the real worker process (issue #10 item 1): with the guard on (the
production default), a send and an outgoing webhook whose URLs name a local host never reach
it — the saved URL is not trusted, the address it resolves to when connecting is checked."""

from __future__ import annotations

import pytest

from statuses import outbound
from statuses.models import OutgoingAttempt, SendTry, WebhookSubscription
from tests.e2e.conftest import wait_for
from tests.fakes.recorder import RecordingServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_refuses_local_addresses_at_connect_time(make_stack, account, make_inbox):
    with RecordingServer() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        # Stored directly, as a URL that passed the save-time check and whose DNS changed since.
        inbox = make_inbox(
            account, "api", webhook_url=f"http://localhost:{port}/send", hmac_secret="s"
        )
        WebhookSubscription.objects.create(
            account=account, url=f"http://localhost:{port}/hook", events=["message.created"]
        )
        stack = make_stack()
        stack.start_worker(TICKMARK_ALLOW_PRIVATE_URLS="0")
        message, _ = outbound.message_create_outgoing(
            account=account, inbox=inbox, to="customer-1", content="Hi"
        )

        send_try = wait_for(
            lambda: SendTry.objects.filter(message=message).exclude(outcome="in_flight").first(),
            timeout=60,
            message="the worker to try the send",
        )
        attempt = wait_for(
            lambda: OutgoingAttempt.objects.first(),
            timeout=60,
            message="the worker to try the outgoing webhook",
        )
        assert send_try.error_code == "connection_failed"
        assert "connection failed" in send_try.error_detail
        assert (attempt.http_status, attempt.error, attempt.response_body) == (
            None,
            "connection failed",
            "",
        )
        assert receiver.requests == []
