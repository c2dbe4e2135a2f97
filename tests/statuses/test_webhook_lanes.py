"""The webhook batcher's lanes: a second batch runs beside the first only while what waits is
heavy (``statuses.views.LANE_BYTES``); light webhooks wait for the one lane and go together."""

import asyncio
import concurrent.futures
import functools
import uuid

from django.http import HttpResponse
from django.utils import timezone

from statuses import views
from statuses.providers.base import WebhookRequest


def item(size: int) -> views.Item:
    request = WebhookRequest(
        method="POST",
        url="http://testserver/webhooks/whatsapp_cloud/x/",
        path="/webhooks/whatsapp_cloud/x/",
        query={},
        headers={},
        body=b"x" * size,
        received_at=timezone.now(),
        remote_addr="127.0.0.1",
    )
    return ("whatsapp_cloud", uuid.uuid4(), request)


def in_own_loop(test):
    """Run an async test on an event loop in a thread of its own. These tests use no database,
    so they run after the browser tests, whose Playwright keeps an event loop running on the
    main thread for the whole session (pytest-asyncio cannot start one there then)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, test(*args, **kwargs)).result()

    return run


class GatedApply:
    """Stands in for the database work: records each batch and how many run at once."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.running = 0
        self.most = 0
        self.gate = asyncio.Event()

    async def __call__(self, items: list) -> list[HttpResponse]:
        self.running += 1
        self.most = max(self.most, self.running)
        self.batches.append(len(items))
        await self.gate.wait()
        self.running -= 1
        return [HttpResponse(str(len(request.body))) for _, _, request in items]


async def run(batcher: views._Batcher, sizes: list[int], apply: GatedApply) -> list[bytes]:
    """Submit webhooks one after another (each arrives while the batches before it are still
    being applied), then let the batches end."""
    submitted = []
    for size in sizes:
        submitted.append(asyncio.create_task(batcher.submit(item(size))))
        for _ in range(3):
            await asyncio.sleep(0)  # the submit, and a lane it started, run now
    apply.gate.set()
    return [response.content for response in await asyncio.gather(*submitted)]


@in_own_loop
async def test_light_webhooks_take_one_lane_and_wait_for_it_together():
    batcher = views._Batcher(lanes=2)
    batcher.apply = apply = GatedApply()

    answers = await run(batcher, [500] * 20, apply)

    assert answers == [b"500"] * 20
    assert apply.most == 1
    assert apply.batches == [1, 19]  # the first went at once; the rest waited and went together
    assert batcher.running == 0


@in_own_loop
async def test_heavy_webhooks_take_a_second_lane():
    batcher = views._Batcher(lanes=2)
    batcher.apply = apply = GatedApply()
    heavy = views.LANE_BYTES  # each alone is worth a lane

    answers = await run(batcher, [heavy] * 6, apply)

    assert answers == [str(heavy).encode()] * 6
    assert apply.most == 2
    assert apply.batches[:2] == [1, 1]  # the first two each took a lane at once
    assert sum(apply.batches) == 6
    assert batcher.running == 0


@in_own_loop
async def test_a_second_lane_stops_when_what_waits_is_light_again():
    batcher = views._Batcher(lanes=2)
    gates: list[asyncio.Event] = []
    batches: list[int] = []

    async def apply(items: list) -> list[HttpResponse]:
        gates.append(gate := asyncio.Event())
        batches.append(len(items))
        await gate.wait()
        return [HttpResponse(b"ok") for _ in items]

    batcher.apply = apply
    heavy = views.LANE_BYTES
    submitted = []
    for size in [heavy, heavy, 500, 500, 500, 500]:
        submitted.append(asyncio.create_task(batcher.submit(item(size))))
        for _ in range(3):
            await asyncio.sleep(0)
    assert batches == [1, 1]  # two lanes, one heavy webhook each; the light ones wait

    gates[0].set()  # the first lane's batch ends: it leaves the light ones to the other lane
    for _ in range(5):
        await asyncio.sleep(0)
    assert (batches, batcher.running) == ([1, 1], 1)

    gates[1].set()  # the other lane's batch ends: it takes the light ones, together
    for _ in range(5):
        await asyncio.sleep(0)
    assert batches == [1, 1, 4]
    gates[2].set()
    assert len(await asyncio.gather(*submitted)) == 6
    assert batcher.running == 0


@in_own_loop
async def test_with_no_threshold_every_lane_starts_whenever_webhooks_wait():
    """TICKMARK_WEBHOOK_LANE_BYTES=0, for a database across a network: light batches wait on
    long round trips, and more lanes overlap them."""
    batcher = views._Batcher(lanes=2, lane_bytes=0)
    batcher.apply = apply = GatedApply()

    answers = await run(batcher, [500] * 6, apply)

    assert answers == [b"500"] * 6
    assert apply.most == 2
    assert apply.batches[:2] == [1, 1]


@in_own_loop
async def test_the_threshold_is_the_setting(settings):
    settings.TICKMARK_WEBHOOK_LANE_BYTES = 123
    views._batchers.clear()
    assert views._batcher().lane_bytes == 123
    views._batchers.clear()


@in_own_loop
async def test_one_lane_is_never_more():
    batcher = views._Batcher(lanes=1)
    batcher.apply = apply = GatedApply()

    await run(batcher, [views.LANE_BYTES] * 4, apply)

    assert apply.most == 1
