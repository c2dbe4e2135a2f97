"""A burst of broadcasts larger than channels-redis's connection pool: every one is delivered
(the background sender bounds the sends in flight instead of failing the excess)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

import pytest
from channels.layers import get_channel_layer

from channels_app import broadcast

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")

BURST = 600  # redis-py's asyncio pool: at most 100 connections per host


def test_a_burst_beyond_the_pool_is_delivered_in_full():
    layer = get_channel_layer()
    sender = broadcast._BackgroundSender()  # noqa: SLF001 - the sender under test, on its own
    channel = asyncio.run_coroutine_threadsafe(layer.new_channel(), sender.loop).result()
    group = f"burst-{os.getpid()}"
    asyncio.run_coroutine_threadsafe(layer.group_add(group, channel), sender.loop).result()

    futures = [sender.submit(layer, group, {"type": "burst.event", "n": n}) for n in range(BURST)]
    done, _ = concurrent.futures.wait(futures, timeout=60)
    failures = [f.exception() for f in done if f.exception() is not None]
    assert len(done) == BURST
    assert failures == []  # unbounded, part of them failed with MaxConnectionsError


def test_the_sender_never_has_more_sends_in_flight_than_its_limit():
    in_flight = 0
    most = 0

    class SlowLayer:
        async def group_send(self, group, message):
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1

    sender = broadcast._BackgroundSender(max_in_flight=8)  # noqa: SLF001
    futures = [sender.submit(SlowLayer(), "g", {"n": n}) for n in range(200)]
    concurrent.futures.wait(futures, timeout=30)
    assert all(f.exception() is None for f in futures)
    assert most == 8
