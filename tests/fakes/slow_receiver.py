"""An integrator endpoint that answers after ``delay`` seconds and tracks how many requests it
holds at once, overall and per path (one path per subscription)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlowReceiver:
    def __init__(self, delay: float):
        self.delay = delay
        self.lock = threading.Lock()
        self.received: list[tuple[str, float]] = []  # (path, monotonic time)
        self.current: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.peak_total = 0
        self.release = threading.Event()  # set: answer at once from now on
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append((self.path, time.monotonic()))
                    receiver.current[self.path] += 1
                    receiver.peak[self.path] = max(
                        receiver.peak[self.path], receiver.current[self.path]
                    )
                    receiver.peak_total = max(receiver.peak_total, receiver.current.total())
                try:
                    receiver.release.wait(receiver.delay)
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (its timeout)
                finally:
                    with receiver.lock:
                        receiver.current[self.path] -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def __enter__(self) -> SlowReceiver:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
