"""Kill a real worker (SIGKILL) in the middle of a batch: after a restart every message was
sent exactly once — the one in flight at the kill becomes ``unknown``, never a blind resend —
and none is left queued."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inbox.models import Inbox, Message
from statuses import correlation, outbound
from statuses.machine import Status
from statuses.models import SendTry
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = 12
KILL_AT = 5


class FakeWhatsApp:
    """The Cloud API send endpoint; on the KILL_AT-th request it SIGKILLs the worker first."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.worker_pid: int | None = None
        self.killed = threading.Event()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.bodies.append(body)
                    count = len(fake.bodies)
                if count == KILL_AT and fake.worker_pid:
                    os.kill(fake.worker_pid, signal.SIGKILL)
                    fake.killed.set()
                    return  # the worker is gone: nobody reads an answer
                payload = json.dumps({"messages": [{"id": f"wamid.{count}"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


def test_worker_killed_mid_batch_sends_every_message_exactly_once(account, make_stack):
    fake = FakeWhatsApp()
    inbox = Inbox.objects.create(
        account=account,
        name="WhatsApp",
        channel_type="whatsapp_cloud",
        config={
            "phone_number_id": "106540352242922",
            "access_token": "token",
            "app_secret": "secret",
            "api_base_url": fake.url,
        },
    )
    template = {"name": "order_update", "language": "en_US"}
    messages = [
        outbound.message_create_outgoing(
            account=account, inbox=inbox, to=f"+1555000{i:04d}", template=template
        )[0]
        for i in range(1, MESSAGES + 1)
    ]
    stack = make_stack()
    # Sweeps off in the first worker: the crash must be recovered by the *next* worker.
    first = stack.start_worker(SWEEP_INTERVAL="0")
    fake.worker_pid = first.pid
    assert fake.killed.wait(60), "the worker never reached the kill point"
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    assert Message.objects.filter(status=Status.QUEUED).count() == MESSAGES - KILL_AT + 1
    assert SendTry.objects.filter(outcome="in_flight").count() == 1

    stack.start_worker(SWEEP_INTERVAL="0.3", SEND_IN_FLIGHT_STALE_AFTER="1", SEND_REQUEUE_AFTER="1")
    wait_for(
        lambda: (
            not Message.objects.filter(status=Status.QUEUED).exists()
            and not SendTry.objects.filter(outcome="in_flight").exists()
        ),
        timeout=60,
        message="every message handled",
    )

    per_message = Counter(body["biz_opaque_callback_data"] for body in fake.bodies)
    expected = {correlation.make(m.id, 1) for m in messages}
    assert set(per_message) == expected
    assert set(per_message.values()) == {1}  # exactly once each
    statuses = Counter(Message.objects.values_list("status", flat=True))
    assert statuses == {Status.SENT: MESSAGES - 1, Status.UNKNOWN: 1}
    lost = SendTry.objects.get(outcome="lost")
    assert Message.objects.get(id=lost.message_id).status == Status.UNKNOWN
    fake.httpd.shutdown()


def test_worker_with_four_send_threads_killed_mid_batch_resends_nothing(account, make_stack):
    """Four send threads: up to four sends are in flight at the kill. Each becomes ``unknown``
    (whether or not its request had left), the rest are sent once each, none twice."""
    fake = FakeWhatsApp()
    inbox = Inbox.objects.create(
        account=account,
        name="WhatsApp",
        channel_type="whatsapp_cloud",
        config={
            "phone_number_id": "106540352242922",
            "access_token": "token",
            "app_secret": "secret",
            "api_base_url": fake.url,
        },
    )
    template = {"name": "order_update", "language": "en_US"}
    messages = [
        outbound.message_create_outgoing(
            account=account, inbox=inbox, to=f"+1555000{i:04d}", template=template
        )[0]
        for i in range(1, MESSAGES + 1)
    ]
    stack = make_stack()
    first = stack.start_worker(SWEEP_INTERVAL="0", WORKER_SEND_THREADS="4")
    fake.worker_pid = first.pid
    assert fake.killed.wait(60), "the worker never reached the kill point"
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    in_flight = SendTry.objects.filter(outcome="in_flight").count()
    assert 1 <= in_flight <= 4

    stack.start_worker(SWEEP_INTERVAL="0.3", SEND_IN_FLIGHT_STALE_AFTER="1", SEND_REQUEUE_AFTER="1")
    wait_for(
        lambda: (
            not Message.objects.filter(status=Status.QUEUED).exists()
            and not SendTry.objects.filter(outcome="in_flight").exists()
        ),
        timeout=60,
        message="every message handled",
    )

    per_message = Counter(body["biz_opaque_callback_data"] for body in fake.bodies)
    assert set(per_message.values()) == {1}  # none twice
    statuses = Counter(Message.objects.values_list("status", flat=True))
    assert statuses == {Status.SENT: MESSAGES - in_flight, Status.UNKNOWN: in_flight}
    unknown = {correlation.make(m.id, 1) for m in Message.objects.filter(status=Status.UNKNOWN)}
    everything = {correlation.make(m.id, 1) for m in messages}
    assert everything - unknown <= set(per_message)  # every sent one reached the provider
    assert SendTry.objects.filter(outcome="lost").count() == in_flight
    fake.httpd.shutdown()
