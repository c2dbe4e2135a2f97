"""Provider webhook endpoint (DESIGN §5): verify, record, parse, delegate. No business logic.

The view is async so that webhooks arriving while others are being applied can be handed in
together: one transaction and one set of statements for all of them. A lone webhook is applied
at once; under load the per-webhook cost falls. The database work runs in lane threads of
their own (``_Lanes``), or with one lane in Django's sync thread, as a sync view's would
(``_Batcher``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from config import errors
from config.errors import json_error
from inbox import caches, ratelimit
from inbox.models import Inbox
from statuses import ingestion, providers
from statuses.providers.base import WebhookRequest

log = logging.getLogger(__name__)

# Enough to amortise the fixed cost of a transaction; small enough to keep each one short.
MAX_BATCH = 64
# A batch carrying at least this much body (the default of TICKMARK_WEBHOOK_LANE_BYTES) lets
# the next lane start at once instead of before its COMMIT (``_Lanes``): heavy batches (many
# statuses each) gain from overlapping whole, while single-status webhooks overlapped whole
# only make twice the batches, each with the same round trips, for a few webhooks each.
# Alternated on one database (bench/README.md, seventh round): single-status webhooks 3,297
# against 3,108 req/s summed over four pairs, kept together against overlapped whole;
# 100-status webhooks 348 against 423.
LANE_BYTES = 64 * 1024
# A lane thread with nothing to do for this long ends (a new one starts with the next webhook).
LANE_IDLE_SECONDS = 5.0
# A lane waiting this long for the baton hands its connection back to the pool meanwhile.
LANE_HOLD_SECONDS = 0.5

Item = tuple[str, uuid.UUID, WebhookRequest]


@csrf_exempt
async def provider_webhook(
    request: HttpRequest, channel_type: str, inbox_id: uuid.UUID
) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    if channel_type not in providers.REGISTRY:
        return json_error(404, "unknown_channel", "No such channel type.")
    received_at = timezone.now()
    # Not request.body: that obeys the API's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) and answers
    # an HTML 400 above it; webhooks have their own limit (a bounce carries the whole mail).
    limit = settings.TICKMARK_WEBHOOK_MAX_BYTES
    declared = errors.declared_length(request)
    body = b"" if declared > limit else request.read(limit + 1)
    webhook_request = WebhookRequest(
        method=request.method,
        url=settings.PUBLIC_BASE_URL + request.get_full_path(),
        path=request.path,
        query={k: request.GET.get(k, "") for k in request.GET},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,  # the raw bytes: signatures are over these exact bytes
        received_at=received_at,
        remote_addr=ratelimit.request_client(request),
    )
    too_large = oversize(declared, len(body), limit)
    return await accept((channel_type, inbox_id, webhook_request), too_large=too_large)


def oversize(declared: int, received: int, limit: int) -> str | None:
    """Why a body is refused as too large, or None when it is within ``limit``."""
    if declared <= limit and received <= limit:
        return None
    size = f"{declared:,} bytes" if declared > limit else "unknown size (chunked, or understated)"
    return f"body of {size} refused: the limit is {limit:,} bytes"


async def accept(item: Item, *, too_large: str | None = None) -> HttpResponse:
    """The one way in for a received webhook, whichever door it came through (this view, or
    ``statuses.asgi``): refuse an oversized body (413, recorded without it), else hand it to
    this event loop's batcher and wait for its answer."""
    if too_large is not None:
        channel_type, inbox_id, webhook_request = item
        await sync_to_async(ingestion.too_large_record, thread_sensitive=True)(
            channel_type=channel_type, inbox_id=inbox_id, request=webhook_request, detail=too_large
        )
        return errors.payload_too_large(settings.TICKMARK_WEBHOOK_MAX_BYTES)
    return await _batcher().submit(item)


class _Batcher:
    """One lane (``TICKMARK_WEBHOOK_LANES=1``: SQLite, and tests inside a transaction): the
    webhooks that arrive while a batch is being applied wait and go together in the next one,
    in Django's thread-sensitive thread, like a sync view (and inside a test's transaction)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Item, asyncio.Future[HttpResponse]]] = []
        self.running = False
        self.tasks: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected
        self.apply = sync_to_async(_receive, thread_sensitive=True)

    async def submit(self, item: Item) -> HttpResponse:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[HttpResponse] = loop.create_future()
        self.pending.append((item, future))
        if not self.running:
            self.running = True
            task = loop.create_task(self._drain())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    responses = await self.apply([item for item, _ in batch])
                except Exception as exc:  # never leave a request hanging
                    log.exception("webhook batch failed")
                    _fail(batch, exc)
                    continue
                _answer(batch, responses)
        finally:
            self.running = False


class _Lanes:
    """Several lanes (``TICKMARK_WEBHOOK_LANES`` ≥ 2, PostgreSQL), each a thread of its own
    with its own connection, passing one baton.

    A lane holds the baton while it takes a batch (everything waiting, up to ``MAX_BATCH``) and
    applies it, and passes it on once the batch's transaction has taken its locks and written
    everything, just before ``COMMIT`` (``ingestion.webhooks_receive``'s ``before_commit``).
    The next lane then takes what arrived meanwhile while the first one's commit, its answers
    and its return run beside it: batches stay as big as with one lane, and the commit's wait
    for the disk and the hops between threads leave the critical path. A lane that waited on
    the baton needs no hop through the event loop to start.

    Heavy webhooks (100-status ones) gain from overlapping whole, so ``lane_bytes`` of body
    counts twice: a batch carrying that much passes the baton as soon as it is taken, and
    while that much waits, a free lane takes it beside the baton's holder without waiting for
    the baton (a light batch holding it through its work would otherwise hold up the heavy
    ones behind it). ``lane_bytes=0`` overlaps every batch whole.

    Locks keep this safe: the lane behind waits for any row the one committing still holds,
    and the one committing takes no more locks, so they cannot deadlock; batches beside each
    other take their rows in the same order (``ingestion``).
    """

    def __init__(self, lanes: int, lane_bytes: int = LANE_BYTES, apply=None) -> None:
        self.loop = asyncio.get_running_loop()
        self.lanes = lanes
        self.lane_bytes = lane_bytes
        # apply(items, before_commit) -> responses, in the lane's thread
        self.apply = apply or _receive_batch
        self.pending: collections.deque[tuple[Item, asyncio.Future[HttpResponse]]] = (
            collections.deque()
        )
        # ``ready`` guards pending, pending_bytes, held and threads, and is notified when
        # webhooks arrive or the baton is passed.
        self.ready = threading.Condition()
        self.pending_bytes = 0
        self.held = False  # the baton
        self.threads = 0

    async def submit(self, item: Item) -> HttpResponse:
        future: asyncio.Future[HttpResponse] = self.loop.create_future()
        with self.ready:
            self.pending.append((item, future))
            self.pending_bytes += len(item[2].body)
            self.ready.notify()
            start = self.threads < self.lanes
            if start:
                self.threads += 1
        if start:
            self._start()
        return await future

    def _start(self) -> None:
        threading.Thread(target=self._lane, name="webhook-lane", daemon=True).start()

    def _lane(self) -> None:
        ended = False
        try:
            while True:
                taken = self._take()
                if taken is None:
                    ended = True
                    return
                batch, size, holds = taken
                handoff = _Handoff(self if holds else None)
                try:
                    if size >= self.lane_bytes:  # heavy: worth a lane of its own (0: any)
                        handoff()
                    try:
                        responses = self.apply([item for item, _ in batch], handoff)
                    except Exception as exc:  # never leave a request hanging
                        log.exception("webhook batch failed")
                        self._call(_fail, batch, exc)
                        continue
                finally:
                    handoff()
                self._call(_answer, batch, responses)
                if any(response.status_code == 503 for response in responses):
                    close_old_connections()  # a failed connection is not used again
        except Exception:
            log.exception("webhook lane failed")
        finally:
            if not ended:  # failed: leave, and start another lane if webhooks wait
                with self.ready:
                    self.threads -= 1
                    restart = bool(self.pending) and self.threads < self.lanes
                    if restart:
                        self.threads += 1
                if restart:
                    self._start()
            with contextlib.suppress(Exception):
                connection.close()  # back to the pool

    def _take(self) -> tuple[list[tuple[Item, asyncio.Future[HttpResponse]]], int, bool] | None:
        """The next batch, its bytes of body, and whether this lane holds the baton for it: with
        the baton when it is free, beside its holder while ``lane_bytes`` wait. None when
        nothing came for ``LANE_IDLE_SECONDS`` (the lane ends).

        While nothing waits, or after ``LANE_HOLD_SECONDS`` waiting for the baton, the lane
        hands its connection back to the pool (outside the lock: ``submit`` takes it on the
        event loop).
        """
        connected, since, idle_until = True, time.monotonic(), None
        while True:
            with self.ready:
                while True:
                    now = time.monotonic()
                    if self.pending:
                        idle_until = None
                        if not self.held:
                            self.held = True
                            return *self._batch(), True
                        if self.pending_bytes >= self.lane_bytes:
                            return *self._batch(), False
                        if connected and now - since >= LANE_HOLD_SECONDS:
                            break
                        self.ready.wait(LANE_HOLD_SECONDS if connected else None)
                    elif connected:
                        break
                    else:
                        if idle_until is None:
                            idle_until = now + LANE_IDLE_SECONDS
                        if now >= idle_until:
                            self.threads -= 1  # with the check, so a submit now starts a lane
                            return None
                        self.ready.wait(idle_until - now)
            close_old_connections()
            connected = False

    def _batch(self) -> tuple[list[tuple[Item, asyncio.Future[HttpResponse]]], int]:
        batch = [self.pending.popleft() for _ in range(min(MAX_BATCH, len(self.pending)))]
        size = sum(len(request.body) for (_, _, request), _ in batch)
        self.pending_bytes -= size
        return batch, size

    def _pass(self) -> None:
        with self.ready:
            self.held = False
            self.ready.notify()

    def _call(self, function, *args) -> None:
        # RuntimeError: the loop has closed (a test's), and nobody waits for the answers.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(function, *args)


class _Handoff:
    """Passes the baton on once, whichever comes first: the batch's ``before_commit``, a heavy
    batch's start, or the batch's end. Does nothing for a batch taken beside the baton."""

    def __init__(self, lanes: _Lanes | None) -> None:
        self.lanes = lanes

    def __call__(self) -> None:
        lanes, self.lanes = self.lanes, None
        if lanes is not None:
            lanes._pass()


def _answer(batch: list[tuple[Item, asyncio.Future[HttpResponse]]], responses) -> None:
    for (_, future), response in zip(batch, responses, strict=True):
        if not future.done():
            future.set_result(response)


def _fail(batch: list[tuple[Item, asyncio.Future[HttpResponse]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher | _Lanes] = (
    weakref.WeakKeyDictionary()
)


def _batcher() -> _Batcher | _Lanes:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        lanes = settings.TICKMARK_WEBHOOK_LANES
        batcher = _batchers[loop] = (
            _Batcher() if lanes == 1 else _Lanes(lanes, settings.TICKMARK_WEBHOOK_LANE_BYTES)
        )
    return batcher


def _receive(items: list[Item]) -> list[HttpResponse]:
    try:
        return _receive_batch(items)
    finally:
        # This runs in Django's thread-sensitive thread, not inside a Django request cycle:
        # hand the connection back (to the pool) as a request would. Inside a test's
        # transaction there is nothing to hand back.
        if not connection.in_atomic_block:
            close_old_connections()


def _receive_batch(
    items: list[Item], before_commit: Callable[[], None] | None = None
) -> list[HttpResponse]:
    try:
        inboxes = caches.inboxes_by_id({inbox_id for _, inbox_id, _ in items})
        responses: list[HttpResponse | None] = [None] * len(items)
        known: list[tuple[int, Inbox, WebhookRequest]] = []
        for index, (channel_type, inbox_id, request) in enumerate(items):
            inbox = inboxes.get(inbox_id)
            if inbox is None or inbox.channel_type != channel_type:
                responses[index] = json_error(404, "unknown_inbox", "No such inbox.")
            else:
                known.append((index, inbox, request))
        outcomes = ingestion.webhooks_receive(
            [(inbox, request) for _, inbox, request in known], before_commit=before_commit
        )
    except (OperationalError, InterfaceError):
        log.warning("database unavailable while receiving %d webhooks", len(items))
        return [_unavailable() for _ in items]
    except DatabaseError:
        log.exception("webhook processing failed")
        return [_unavailable() for _ in items]
    for (index, _, _), outcome in zip(known, outcomes, strict=True):
        responses[index] = HttpResponse(
            outcome.body,
            status=outcome.http_status,
            content_type=outcome.content_type,
            headers=outcome.headers,
        )
    return responses  # type: ignore[return-value]


def _unavailable() -> HttpResponse:
    response = json_error(503, "unavailable", "Temporarily unavailable, please retry.")
    response["Retry-After"] = "5"
    return response
