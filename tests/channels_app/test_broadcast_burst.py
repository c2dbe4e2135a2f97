"""A burst of broadcasts larger than channels-redis's connection pool: every one is delivered
(the background sender bounds the sends in flight instead of failing the excess)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

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


def test_a_burst_of_agent_events_reaches_a_listening_page_in_full_and_in_order():
    """600 changes for one account while an agent's page listens: one channel-layer message
    each would be 500 past the channel's capacity (100), dropped by channels-redis.

    A layer of its own: channels-redis keeps every channel of a process's layer in one Redis
    key, whose capacity the burst above may have filled with messages nobody reads."""
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    sender = broadcast._BackgroundSender()  # noqa: SLF001
    channel = asyncio.run_coroutine_threadsafe(layer.new_channel(), sender.loop).result()
    group = f"agents-{os.getpid()}"
    asyncio.run_coroutine_threadsafe(layer.group_add(group, channel), sender.loop).result()

    futures = [
        sender.submit(layer, group, {"type": "agent.events", "events": [{"n": n}]})
        for n in range(BURST)
    ]
    done, _ = concurrent.futures.wait(futures, timeout=60)
    assert len(done) == BURST and all(f.exception() is None for f in done)

    received = []
    while len(received) < BURST:
        message = asyncio.run_coroutine_threadsafe(layer.receive(channel), sender.loop).result(5)
        assert message["type"] == "agent.events" and len(message["events"]) <= broadcast.MAX_MERGED
        received += [event["n"] for event in message["events"]]
    assert received == list(range(BURST))
