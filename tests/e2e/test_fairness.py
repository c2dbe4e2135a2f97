"""One tenant never stalls another, with the real `manage.py worker` (issue #10 item 4).

Account B points 12 subscriptions at an endpoint that takes 8 s to answer and sends a message;
while the worker is busy delivering B's webhooks, account A's message is sent promptly (the
review measured 107 s when one thread ran webhook rounds before sends), and A's own webhook
is delivered promptly too.
"""

from __future__ import annotations

import time

import pytest

from inbox.models import Account, Message
from statuses import outbound
from statuses.machine import Status
from statuses.models import WebhookSubscription
from tests.e2e.conftest import wait_for
from tests.fakes.counting_whatsapp import whatsapp_inbox_for
from tests.fakes.slow_receiver import SlowReceiver
from tests.fakes.whatsapp_send import FakeWhatsApp

EVENTS = ["message.created", "message.status_changed"]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def send(account, inbox, to):
    template = {"name": "order_update", "language": "en_US"}
    return outbound.message_create_outgoing(account=account, inbox=inbox, to=to, template=template)[
        0
    ]


def test_a_tenant_with_12_slow_webhooks_does_not_delay_another_tenants_send(account, make_stack):
    provider = FakeWhatsApp(delay=0)
    tenant_b = Account.objects.create(name="Slow Corp")
    with SlowReceiver(delay=8) as slow, SlowReceiver(delay=0) as fast:
        for i in range(12):
            WebhookSubscription.objects.create(
                account=tenant_b, url=f"{slow.url}/b{i}", events=EVENTS
            )
        WebhookSubscription.objects.create(account=account, url=f"{fast.url}/a", events=EVENTS)
        a_inbox = whatsapp_inbox_for(account, provider)
        b_inbox = whatsapp_inbox_for(tenant_b, provider)
        stack = make_stack()
        worker = stack.start_worker(WEBHOOK_TIMEOUT="10")

        send(tenant_b, b_inbox, "+15550000001")
        wait_for(lambda: slow.count() >= 2, timeout=30, message="B's webhooks under way")

        started = time.monotonic()
        message = send(account, a_inbox, "+15550000002")
        wait_for(
            lambda: Message.objects.filter(id=message.id, status=Status.SENT).exists(),
            timeout=30,
            message="A's message sent",
        )
        sent_after = time.monotonic() - started
        wait_for(lambda: fast.count() >= 1, timeout=30, message="A's webhook")
        hooked_after = fast.received[0][1] - started
        b_done = slow.count()

        assert sent_after < 3, f"A's send took {sent_after:.1f} s"
        assert hooked_after < 3, f"A's webhook took {hooked_after:.1f} s"
        assert slow.current.total() > 0 and b_done < 12 * 2  # B's were still hanging meanwhile
        assert worker.poll() is None
    provider.httpd.shutdown()
