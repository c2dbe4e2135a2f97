"""The WhatsApp Cloud API send endpoint: records each body with its arrival time and answers
after a delay, or stands in for a crash by killing the worker in the middle of a send."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeWhatsApp:
    """The Cloud API send endpoint, answering each send after ``delay`` seconds.

    On the ``kill_at``-th request (once ``worker_pid`` is set) it SIGKILLs that worker instead
    of answering: the worker dies with the request in flight, and ``killed`` is set.
    """

    def __init__(self, delay: float = 0.0, kill_at: int = 0):
        self.arrivals: list[tuple[float, dict]] = []  # (time.monotonic(), body)
        self.lock = threading.Lock()
        self.worker_pid: int | None = None
        self.killed = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.arrivals.append((time.monotonic(), body))
                    count = len(fake.arrivals)
                if count == kill_at and fake.worker_pid:
                    os.kill(fake.worker_pid, signal.SIGKILL)
                    fake.killed.set()
                    return  # the worker is gone: nobody reads an answer
                time.sleep(delay)
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

    @property
    def bodies(self) -> list[dict]:
        with self.lock:
            return [body for _, body in self.arrivals]

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def arrived_after(self, moment: float) -> list[float]:
        """How long after ``moment`` (``time.monotonic()``) each later send arrived."""
        with self.lock:
            return [at - moment for at, _ in self.arrivals if at > moment]

    def per_message(self) -> Counter:
        """How many times each message (by its correlation id) was sent."""
        return Counter(body["biz_opaque_callback_data"] for body in self.bodies)
