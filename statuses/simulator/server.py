"""The provider simulator: a local HTTP server that speaks each provider's send API and then
plays back that provider's signed status webhooks to Tickmark (DESIGN §10).

URLs: ``<simulator>/<channel_type>/<inbox_id>/<the provider's own path>`` — an inbox's
``api_base_url`` is ``<simulator>/<channel_type>/<inbox_id>``, so the adapters call exactly the
paths they call in production. The simulator reads the inbox's config (to check credentials and
sign webhooks) read-only from the database, or from ``inboxes`` passed in by a test.

The playback is driven by a ``Scenario``: delays, duplicates, reordering, occasional webhook
delivery failures (retried like providers do) and random delivery failures, all from one seeded
random generator so a test can make it deterministic.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx

from statuses.simulator import templates
from statuses.simulator.providers import (
    SEND_HANDLERS,
    Inbox,
    Report,
    Request,
    SendAnswer,
    Webhook,
    webhooks_for,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scenario:
    """How the simulated providers behave after accepting a message."""

    first_delay: tuple[float, float] = (0.3, 1.0)  # send answer → first status
    step_delay: tuple[float, float] = (0.8, 2.5)  # between later statuses
    read_rate: float = 0.8  # share of delivered messages the contact reads
    failure_rate: float = 0.03  # share of messages that fail after "sent" (besides …0000)
    duplicate_rate: float = 0.1  # share of webhooks delivered twice
    reorder_rate: float = 0.1  # share of messages whose later statuses arrive swapped
    webhook_failure_rate: float = 0.0  # share of webhook posts that "fail" and are retried
    webhook_retries: int = 5
    seed: int | None = None

    @classmethod
    def instant(cls, seed: int = 1) -> Scenario:
        """No delays, no randomness: what tests assert on."""
        return cls(
            first_delay=(0.0, 0.0),
            step_delay=(0.05, 0.05),
            read_rate=1.0,
            failure_rate=0.0,
            duplicate_rate=0.0,
            reorder_rate=0.0,
            seed=seed,
        )


@dataclass
class RecordedSend:
    channel_type: str
    inbox_id: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int
    provider_id: str

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class WebhookPost:
    url: str
    body: bytes
    http_status: int | None
    error: str = ""


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class ProviderSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        scenario: Scenario | None = None,
        inboxes: Callable[[str], Inbox | None] | None = None,
    ):
        self.scenario = scenario or Scenario()
        self.random = random.Random(self.scenario.seed)
        self.lookup = inboxes or inbox_from_database
        self.sends: list[RecordedSend] = []
        self.webhooks: list[WebhookPost] = []
        self._lock = threading.Lock()
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._running = False
        self._client = httpx.Client(timeout=10)
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = simulator.handle(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, name="simulator-http", daemon=True),
            threading.Thread(target=self._play, name="simulator-webhooks", daemon=True),
        ]

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, channel_type: str, inbox_id: object) -> str:
        """The ``api_base_url`` an inbox needs to send through this simulator."""
        return f"{self.url}/{channel_type}/{inbox_id}"

    def start(self) -> ProviderSimulator:
        self._running = True
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._client.close()

    def __enter__(self) -> ProviderSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def idle(self) -> bool:
        """True when no webhook is waiting to be played."""
        with self._lock:
            return not self._jobs

    # -----------------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        segments = parts.path.lstrip("/").split("/", 2)
        if len(segments) < 3 or segments[0] not in SEND_HANDLERS:
            return _json(404, {"error": "unknown provider path"})
        channel_type, inbox_id, rest = segments
        try:
            inbox = self.lookup(inbox_id)
        except Exception:  # a bad id, the database not ready…
            log.exception("simulator: inbox lookup failed")
            inbox = None
        if inbox is None or inbox.channel_type != channel_type:
            return _json(404, {"error": "unknown inbox"})
        request = Request(method, "/" + rest, parse_qs(parts.query), headers, body)
        handler = SEND_HANDLERS[channel_type]
        if templates.is_template_path(channel_type, request.path):
            handler = templates.handle
        try:
            answer = handler(inbox, request)
        except (ValueError, KeyError, TypeError) as exc:
            answer = SendAnswer(400, {"error": {"message": f"bad request: {exc}", "code": 100}})
        with self._lock:
            self.sends.append(
                RecordedSend(
                    channel_type,
                    inbox_id,
                    method,
                    request.path,
                    request.query,
                    headers,
                    body,
                    answer.status,
                    answer.provider_id,
                )
            )
        if answer.provider_id and answer.reports:
            self._plan(inbox, answer)
        for delay, webhook in answer.later:
            self._schedule(time.monotonic() + delay, webhook, self.scenario.webhook_retries)
        status, response_headers, payload = _json(answer.status, answer.body)
        return status, {**response_headers, **answer.headers}, payload

    def _plan(self, inbox: Inbox, answer: SendAnswer) -> None:
        scenario, rnd = self.scenario, self.random
        reports = list(answer.reports)
        if reports and reports[-1].status == "read" and rnd.random() >= scenario.read_rate:
            reports.pop()
        statuses = [r.status for r in reports]
        fails_later = inbox.channel_type in FAILURE_REPORTING
        already_failing = "failed" in statuses or "undelivered" in statuses
        if fails_later and not already_failing and rnd.random() < scenario.failure_rate:
            reports = [r for r in reports if r.status == "sent"] + [
                Report(_fail_word(inbox.channel_type), _random_error(inbox.channel_type))
            ]
        at = time.monotonic() + rnd.uniform(*scenario.first_delay)
        if reports and reports[0].status == "read":
            # Nobody reads a message the instant the provider accepts it (Instagram reports
            # only reads): at least one step passes, as a delivery would have taken.
            at += rnd.uniform(*scenario.step_delay)
        steps = []
        for report in reports:
            steps.append((at, report))
            at += rnd.uniform(*scenario.step_delay)
        if len(steps) >= 2 and rnd.random() < scenario.reorder_rate:
            (t1, r1), (t2, r2) = steps[-2], steps[-1]
            steps[-2], steps[-1] = (t1, r2), (t2, r1)
        wall = time.time() - time.monotonic()
        for due, report in steps:
            for webhook in webhooks_for(inbox, answer, [report], at=wall + due):
                self._schedule(due, webhook, scenario.webhook_retries)
                if rnd.random() < scenario.duplicate_rate:
                    self._schedule(due + rnd.uniform(0.05, 1.0), webhook, 0)

    def _schedule(self, due: float, webhook: Webhook, retries: int) -> None:
        with self._wake:
            heapq.heappush(
                self._jobs,
                _Job(due, next(self._seq), lambda: self._post(webhook, retries, 1.0)),
            )
            self._wake.notify_all()

    def _play(self) -> None:
        while True:
            with self._wake:
                while self._running and (not self._jobs or self._jobs[0].due > time.monotonic()):
                    timeout = self._jobs[0].due - time.monotonic() if self._jobs else None
                    self._wake.wait(timeout)
                if not self._running:
                    return
                job = heapq.heappop(self._jobs)
            try:
                job.action()
            except Exception:
                log.exception("simulator: webhook playback failed")

    def _post(self, webhook: Webhook, retries: int, backoff: float) -> None:
        if self.random.random() < self.scenario.webhook_failure_rate:
            status, error = None, "simulated network failure"
        else:
            try:
                response = self._client.post(
                    webhook.url, content=webhook.body, headers=webhook.headers
                )
                status, error = response.status_code, ""
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.webhooks.append(WebhookPost(webhook.url, webhook.body, status, error))
        if (status is None or status >= 500 or status == 429) and retries > 0:
            # Providers retry failed webhook deliveries with backoff.
            with self._wake:
                heapq.heappush(
                    self._jobs,
                    _Job(
                        time.monotonic() + backoff,
                        next(self._seq),
                        lambda: self._post(webhook, retries - 1, backoff * 2),
                    ),
                )
                self._wake.notify_all()


# Providers whose webhooks can report a failure after "sent" (Messenger/Instagram cannot).
FAILURE_REPORTING = frozenset(
    {
        "whatsapp_cloud",
        "whatsapp_360dialog",
        "twilio_sms",
        "twilio_whatsapp",
        "bandwidth_sms",
        "viber",
    }
)


def _fail_word(channel_type: str) -> str:
    return "undelivered" if channel_type.startswith("twilio") else "failed"


def _random_error(channel_type: str) -> tuple[str, str]:
    if channel_type.startswith("twilio"):
        return ("30003", "Unreachable destination handset")
    if channel_type == "bandwidth_sms":
        return ("4720", "Carrier Rejected as Invalid Destination Address")
    if channel_type == "viber":
        return ("", "Message not delivered")
    return ("131026", "Message undeliverable")


def _json(status: int, body: object) -> tuple[int, dict[str, str], bytes]:
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return status, {"Content-Type": "application/json"}, payload


def inbox_from_database(inbox_id: str) -> Inbox | None:
    """Read an inbox's config (read-only) from Tickmark's database."""
    import uuid

    # Imported here on purpose: the simulator also runs as a standalone fake provider without
    # Django settings; only this optional look-up (embedded mode) needs the ORM.
    from django.db import connection

    from inbox.models import Inbox as InboxModel

    try:
        key = uuid.UUID(inbox_id)
    except ValueError:
        return None
    try:
        row = InboxModel.objects.filter(id=key).first()
    finally:
        connection.close()  # each request runs in its own thread: give the connection back
    if row is None:
        return None
    return Inbox(str(row.id), row.channel_type, dict(row.config or {}), row.webhook_url)
