"""The webhook lanes (``statuses.views._Lanes``): threads passing one baton. A lane takes what
waits and applies it; the next lane starts on what arrived meanwhile only once the first has
passed the baton, just before its COMMIT (or at once, for a heavy batch:
``statuses.views.LANE_BYTES``), or beside its holder while that many bytes wait. With one lane
(``_Batcher``) batches never overlap."""

import asyncio
import concurrent.futures
import functools
import threading
import time
import uuid

import pytest
from django.http import HttpResponse
from django.utils import timezone

from statuses import views
from statuses.providers.base import WebhookRequest

WAIT = 10.0  # seconds a test waits for a lane before it fails


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


class ScriptedApply:
    """Stands in for the database work of a lane (``apply(items, before_commit)``): batch k
    waits for ``locked[k]`` before it calls ``before_commit`` (its locks taken, everything
    written), then for ``done[k]`` before it returns (its COMMIT)."""

    def __init__(self, batches: int = 8, fail: set[int] = frozenset()) -> None:
        self.locked = [threading.Event() for _ in range(batches)]
        self.done = [threading.Event() for _ in range(batches)]
        self.fail = fail
        self.batches: list[int] = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, items: list, before_commit) -> list[HttpResponse]:
        with self.lock:
            k = len(self.batches)
            self.batches.append(len(items))
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.locked[k].wait(WAIT)
            before_commit()
            assert self.done[k].wait(WAIT)
            if k in self.fail:
                raise RuntimeError(f"batch {k} failed")
            return [HttpResponse(str(len(request.body))) for _, _, request in items]
        finally:
            with self.lock:
                self.running -= 1

    def release_all(self) -> None:
        for event in (*self.locked, *self.done):
            event.set()


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def submit_all(lanes: views._Lanes, sizes: list[int]) -> list[asyncio.Task]:
    return [asyncio.ensure_future(lanes.submit(item(size))) for size in sizes]


@in_own_loop
async def test_the_next_lane_starts_on_what_waits_once_the_first_passes_the_baton():
    lanes = views._Lanes(lanes=2)
    lanes.apply = apply = ScriptedApply()

    first = submit_all(lanes, [500])
    await until(lambda: apply.batches == [1], "the first batch")
    rest = submit_all(lanes, [500] * 19)
    await asyncio.sleep(0.2)
    assert apply.batches == [1]  # the second lane waits for the baton; the webhooks wait

    apply.locked[0].set()  # the first batch's locks are taken: it passes the baton on
    await until(lambda: len(apply.batches) == 2, "the second batch")
    assert apply.batches == [1, 19]  # everything that waited, together
    assert apply.running == 2  # the second batch runs while the first has not committed

    apply.release_all()
    answers = [response.content for response in await asyncio.gather(*first, *rest)]
    assert answers == [b"500"] * 20
    assert apply.most == 2


@in_own_loop
async def test_heavy_batches_pass_the_baton_at_once():
    lanes = views._Lanes(lanes=2)
    lanes.apply = apply = ScriptedApply()
    heavy = views.LANE_BYTES  # each alone is worth a lane

    submitted = submit_all(lanes, [heavy])
    await until(lambda: apply.batches == [1], "the first batch")
    submitted += submit_all(lanes, [heavy] * 5)
    await until(lambda: len(apply.batches) == 2, "the second batch")
    assert apply.running == 2  # neither has taken its locks yet: they overlap whole

    apply.release_all()
    answers = [response.content for response in await asyncio.gather(*submitted)]
    assert answers == [str(heavy).encode()] * 6
    assert apply.most == 2  # never more than the lanes
    assert sum(apply.batches) == 6


@in_own_loop
async def test_heavy_webhooks_start_beside_a_light_batch_holding_the_baton():
    """A light batch holds the baton through its work; 100-status webhooks that arrive
    meanwhile do not wait for it once ``lane_bytes`` of them wait (the eighth round's 100-status
    regression: one or two of them held the baton while the rest queued)."""
    lanes = views._Lanes(lanes=2)
    lanes.apply = apply = ScriptedApply()
    part = views.LANE_BYTES // 4

    first = submit_all(lanes, [part])  # light: it keeps the baton until its locks are taken
    await until(lambda: apply.batches == [1], "the first batch")
    behind = submit_all(lanes, [part] * 3)
    await asyncio.sleep(0.2)
    assert apply.batches == [1]  # 3/4 of the threshold waits: the second lane waits too

    behind += submit_all(lanes, [part])  # now the threshold waits
    await until(lambda: len(apply.batches) == 2, "the second batch")
    assert apply.batches == [1, 4]  # taken together, beside the first
    assert apply.running == 2
    assert not apply.locked[0].is_set()  # the first still holds the baton

    apply.release_all()
    answers = [response.content for response in await asyncio.gather(*first, *behind)]
    assert answers == [str(part).encode()] * 5
    assert apply.most == 2
    assert lanes.pending_bytes == 0


@in_own_loop
async def test_with_no_threshold_every_batch_passes_the_baton_at_once():
    """TICKMARK_WEBHOOK_LANE_BYTES=0, for a database across a network: light batches wait on
    long round trips, and more lanes overlap them."""
    lanes = views._Lanes(lanes=2, lane_bytes=0)
    lanes.apply = apply = ScriptedApply()

    submitted = submit_all(lanes, [500])
    await until(lambda: apply.batches == [1], "the first batch")
    submitted += submit_all(lanes, [500] * 5)
    await until(lambda: len(apply.batches) == 2, "the second batch")

    apply.release_all()
    assert len(await asyncio.gather(*submitted)) == 6
    assert apply.most == 2


@in_own_loop
async def test_a_failed_batch_fails_its_own_webhooks_and_the_lanes_go_on():
    lanes = views._Lanes(lanes=2)
    lanes.apply = apply = ScriptedApply(fail={0})

    failed = submit_all(lanes, [500])
    await until(lambda: apply.batches == [1], "the first batch")
    apply.release_all()
    with pytest.raises(RuntimeError, match="batch 0 failed"):
        await failed[0]

    later = submit_all(lanes, [500] * 3)
    answers = [response.content for response in await asyncio.gather(*later)]
    assert answers == [b"500"] * 3


@in_own_loop
async def test_an_idle_lane_ends_and_the_next_webhook_starts_one(monkeypatch):
    monkeypatch.setattr(views, "LANE_IDLE_SECONDS", 0.05)
    lanes = views._Lanes(lanes=2)
    lanes.apply = apply = ScriptedApply()
    apply.release_all()

    assert [r.content for r in await asyncio.gather(*submit_all(lanes, [7] * 3))] == [b"7"] * 3
    await until(lambda: lanes.threads == 0, "the lanes to end")

    assert [r.content for r in await asyncio.gather(*submit_all(lanes, [9]))] == [b"9"]
    assert lanes.threads >= 1


@in_own_loop
async def test_a_lane_that_fails_outside_a_batch_is_replaced(monkeypatch):
    """Whatever goes wrong in a lane itself, waiting webhooks are not left without one."""
    lanes = views._Lanes(lanes=1 + 1)
    lanes.apply = apply = ScriptedApply()
    apply.release_all()
    real_take = lanes._take
    calls = []

    def take_failing_once():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("lost the connection while idle")
        return real_take()

    monkeypatch.setattr(lanes, "_take", take_failing_once)
    answers = await asyncio.wait_for(asyncio.gather(*submit_all(lanes, [5] * 4)), WAIT)
    assert [r.content for r in answers] == [b"5"] * 4


@in_own_loop
async def test_the_settings_choose_the_lanes(settings):
    settings.TICKMARK_WEBHOOK_LANES = 2
    settings.TICKMARK_WEBHOOK_LANE_BYTES = 123
    views._batchers.clear()
    batcher = views._batcher()
    assert isinstance(batcher, views._Lanes)
    assert (batcher.lanes, batcher.lane_bytes) == (2, 123)
    settings.TICKMARK_WEBHOOK_LANES = 1
    views._batchers.clear()
    assert isinstance(views._batcher(), views._Batcher)
    views._batchers.clear()


class GatedApply:
    """The one lane's apply (async, as ``_Batcher`` awaits it): records each batch and how
    many run at once."""

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


@in_own_loop
async def test_one_lane_never_overlaps_and_what_waits_goes_together():
    batcher = views._Batcher()
    batcher.apply = apply = GatedApply()

    submitted = []
    for size in [views.LANE_BYTES] * 4 + [500] * 4:
        submitted.append(asyncio.create_task(batcher.submit(item(size))))
        for _ in range(3):
            await asyncio.sleep(0)
    apply.gate.set()
    await asyncio.gather(*submitted)

    assert apply.most == 1
    assert apply.batches == [1, 7]
    assert not batcher.running
