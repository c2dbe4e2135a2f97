"""Provider webhook endpoint (DESIGN §5): verify, record, parse, delegate. No business logic.

The view is async so that webhooks arriving while others are being applied can be handed in
together (``_Batcher``): one transaction and one set of statements for all of them. A lone
webhook is applied at once, exactly as before; under load the per-webhook cost falls. The
database work still runs in Django's sync thread, as any sync view's would.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref

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
# A second lane (up to TICKMARK_WEBHOOK_LANES) starts only while the webhooks waiting for the
# next batch carry at least this much body (the default of TICKMARK_WEBHOOK_LANE_BYTES).
# Heavy batches (many statuses each) gain from overlapping one batch's round trips with the
# next one's Python, while single-status webhooks split over two lanes only make twice the
# batches, each with the same round trips, for a few webhooks each. Alternated on one
# database (bench/README.md, seventh round): one lane against two, single-status webhooks
# 3,297 against 3,108 req/s summed over four pairs, with 0.1-0.3 ms less daphne CPU each;
# 100-status webhooks 348 against 423.
LANE_BYTES = 64 * 1024

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
    """Collects the webhooks that arrive while a batch is being applied into the next one."""

    def __init__(self, lanes: int, lane_bytes: int = LANE_BYTES) -> None:
        self.pending: list[tuple[Item, asyncio.Future[HttpResponse]]] = []
        self.lanes = lanes
        self.lane_bytes = lane_bytes
        self.running = 0
        self.tasks: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected
        # One lane runs in Django's thread-sensitive thread, like a sync view (and inside a
        # test's transaction); more lanes each take a pool thread and connection of their own,
        # so one batch's round trips to PostgreSQL overlap with the next one's.
        self.apply = sync_to_async(_receive, thread_sensitive=lanes == 1)

    async def submit(self, item: Item) -> HttpResponse:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[HttpResponse] = loop.create_future()
        self.pending.append((item, future))
        if self.running == 0 or (self.running < self.lanes and self._heavy()):
            self.running += 1
            task = loop.create_task(self._drain())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await future

    def _heavy(self) -> bool:
        """Whether the next batch is worth a lane of its own (``lane_bytes``; with 0, any)."""
        waiting = 0
        for (_, _, request), _ in self.pending[:MAX_BATCH]:
            waiting += len(request.body)
            if waiting >= self.lane_bytes:
                return True
        return False

    async def _drain(self) -> None:
        try:
            while self.pending:
                if self.running > 1 and not self._heavy():
                    break  # another lane takes light batches, each bigger for it
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
                try:
                    responses = await self.apply([item for item, _ in batch])
                except Exception as exc:  # never leave a request hanging
                    log.exception("webhook batch failed")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), response in zip(batch, responses, strict=True):
                    if not future.done():
                        future.set_result(response)
        finally:
            self.running -= 1


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
    weakref.WeakKeyDictionary()
)


def _batcher() -> _Batcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _Batcher(
            settings.TICKMARK_WEBHOOK_LANES, settings.TICKMARK_WEBHOOK_LANE_BYTES
        )
    return batcher


def _receive(items: list[Item]) -> list[HttpResponse]:
    try:
        return _receive_batch(items)
    finally:
        # This runs in whichever thread asgiref picked for the request that started the drain,
        # not inside a Django request cycle: hand the connection back (to the pool) as a
        # request would, so threads never pile up connections. Inside a test's transaction
        # there is nothing to hand back.
        if not connection.in_atomic_block:
            close_old_connections()


def _receive_batch(items: list[Item]) -> list[HttpResponse]:
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
        outcomes = ingestion.webhooks_receive([(inbox, request) for _, inbox, request in known])
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
