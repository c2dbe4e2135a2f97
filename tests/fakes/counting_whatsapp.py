"""The WhatsApp Cloud API send endpoint, timing every send it receives (send-rate tests, bench).

``busy(seconds, retry_after)`` makes it answer 429 with ``Retry-After`` and Meta's throughput
error (130429) for a while, as the Cloud API does when a number sends faster than its tier.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CountingWhatsApp:
    def __init__(self) -> None:
        self.accepted: list[float] = []  # time.time() of each accepted send, in arrival order
        self.refused: list[float] = []  # ... of each send answered 429
        self.lock = threading.Lock()
        self.busy_until = 0.0
        self.retry_after = 0
        self.busy_after: int | None = None  # start a busy spell at the N-th accepted send
        self.busy_for = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                now = time.time()
                with fake.lock:
                    if fake.busy_after is not None and len(fake.accepted) >= fake.busy_after:
                        fake.busy_after = None
                        fake.busy_until = now + fake.busy_for
                    if now < fake.busy_until:
                        fake.refused.append(now)
                        status, headers = 429, {"Retry-After": str(fake.retry_after)}
                        payload = {"error": {"code": 130429, "message": "Rate limit hit"}}
                    else:
                        fake.accepted.append(now)
                        status, headers = 200, {}
                        payload = {"messages": [{"id": f"wamid.{len(fake.accepted)}"}]}
                body = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def busy_at(self, sends: int, *, seconds: float, retry_after: int) -> None:
        """Answer 429 for ``seconds`` once ``sends`` sends have been accepted."""
        with self.lock:
            self.busy_after, self.busy_for, self.retry_after = sends, seconds, retry_after

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def times(self) -> list[float]:
        with self.lock:
            return sorted(self.accepted)

    def most_in_any_second(self) -> int:
        """The most sends accepted within any 1-second window (sliding, not clock seconds)."""
        times = self.times()
        return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)

    def between(self, start: float, end: float) -> int:
        times = self.times()
        return bisect.bisect_left(times, end) - bisect.bisect_left(times, start)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def whatsapp_inbox_for(account, fake, **fields):
    """A WhatsApp Cloud inbox of ``account`` that sends to ``fake``, any fake Cloud API server
    with a ``url`` (this module's, or ``tests.fakes.whatsapp_send.FakeWhatsApp``); ``fields``:
    e.g. its ``max_send_rate``."""
    from inbox.models import Inbox

    return Inbox.objects.create(
        account=account,
        name="WhatsApp",
        channel_type="whatsapp_cloud",
        config={
            "phone_number_id": "106540352242922",
            "access_token": "token",
            "app_secret": "secret",
            "api_base_url": fake.url,
        },
        **fields,
    )
