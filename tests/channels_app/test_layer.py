"""Our Redis channel layer's group send (``channels_app.layers``) against channels-redis's own:
the same messages reach the same channels, capacity and expiry are kept, in half the round
trips."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
import uuid

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer as StockLayer
from django.conf import settings
from redis.asyncio.connection import AbstractConnection

from channels_app.layers import RedisChannelLayer

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")


def _run(coroutine):
    """On a thread of its own: the browser tests leave an event loop running on this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def _layer(cls, **config):
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    return cls(hosts=hosts, prefix=f"layer-test-{uuid.uuid4().hex[:8]}", **config)


def _round_trips(monkeypatch) -> list[int]:
    """Counts what each connection sends to Redis (one call per command or pipeline)."""
    sent = [0]
    send = AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):
        sent[0] += 1
        return await send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


async def _receive_all(layer, channels) -> dict[str, list]:
    got = {}
    for channel in channels:
        got[channel] = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), 0.3)
            except TimeoutError:
                break
            got[channel].append(message)
    return got


def test_the_configured_layer_is_ours():
    assert isinstance(get_channel_layer(), RedisChannelLayer)


@pytest.mark.parametrize("cls", [StockLayer, RedisChannelLayer])
def test_every_member_of_the_group_gets_the_message_once(cls):
    async def run():
        sender, other = _layer(cls), _layer(cls)
        sender.prefix = other.prefix  # two processes of one deployment
        a, b = await sender.new_channel(), await sender.new_channel()
        c = await other.new_channel()
        lonely = await other.new_channel()
        for channel in (a, b, c):
            await sender.group_add("agents", channel)
        await sender.group_send("agents", {"type": "agent.events", "events": [{"n": 1}]})
        await sender.group_send("agents", {"type": "agent.events", "events": [{"n": 2}]})
        got = await _receive_all(sender, [a, b])
        got.update(await _receive_all(other, [c, lonely]))
        await sender.flush()
        return got

    got = _run(run())
    members = [channel for channel in got if got[channel]]
    assert len(members) == 3
    for channel in members:
        assert [m["events"][0]["n"] for m in got[channel]] == [1, 2]
        assert all(m["type"] == "agent.events" for m in got[channel])
    assert [messages for messages in got.values() if not messages] == [[]]  # not in the group


@pytest.mark.parametrize("cls", [StockLayer, RedisChannelLayer])
def test_a_channel_at_capacity_drops_the_message_and_the_others_get_it(cls):
    async def run():
        layer = _layer(cls, capacity=2)
        full, free = await layer.new_channel(), await layer.new_channel()
        other = _layer(cls, capacity=2)
        other.prefix = layer.prefix
        elsewhere = await other.new_channel()  # another key: its own capacity
        await layer.group_add("g", full)
        await layer.group_send("g", {"type": "x", "n": 1})
        await layer.group_send("g", {"type": "x", "n": 2})
        await layer.group_add("g", free)
        await layer.group_add("g", elsewhere)
        # channels-redis keeps a process's channels in one key: ``full`` and ``free`` share it,
        # and it holds two messages already.
        await layer.group_send("g", {"type": "x", "n": 3})
        got = await _receive_all(layer, [full, free])
        got.update(await _receive_all(other, [elsewhere]))
        await layer.flush()
        return got, full, free, elsewhere

    got, full, free, elsewhere = _run(run())
    assert [m["n"] for m in got[full]] == [1, 2]
    assert got[free] == []
    assert [m["n"] for m in got[elsewhere]] == [3]


@pytest.mark.parametrize("cls", [StockLayer, RedisChannelLayer])
def test_an_expired_member_gets_nothing_and_leaves_the_group(cls):
    async def run():
        layer = _layer(cls, group_expiry=60)
        stale, fresh = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("g", fresh)
        connection = layer.connection(layer.consistent_hash("g"))
        await connection.zadd(layer._group_key("g"), {stale: int(time.time()) - 3600})  # noqa: SLF001
        await layer.group_send("g", {"type": "x"})
        members = await connection.zrange(layer._group_key("g"), 0, -1)  # noqa: SLF001
        got = await _receive_all(layer, [stale, fresh])
        await layer.flush()
        return got, members, stale, fresh

    got, members, stale, fresh = _run(run())
    assert got[stale] == [] and len(got[fresh]) == 1
    assert members == [fresh.encode()]


@pytest.mark.parametrize(
    ("cls", "empty", "with_members"), [(StockLayer, 2, 4), (RedisChannelLayer, 1, 2)]
)
def test_a_group_send_waits_for_redis_half_as_often(monkeypatch, cls, empty, with_members):
    async def run():
        layer = _layer(cls)
        channel = await layer.new_channel()
        await layer.group_add("watched", channel)
        await layer.group_send("warm", {"type": "x"})  # the connection is open
        sent = _round_trips(monkeypatch)
        await layer.group_send("nobody", {"type": "x"})
        counts = [sent[0]]
        await layer.group_send("watched", {"type": "x"})
        counts.append(sent[0] - counts[0])
        assert len((await _receive_all(layer, [channel]))[channel]) == 1
        await layer.flush()
        return counts

    assert _run(run()) == [empty, with_members]
