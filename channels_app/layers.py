"""The Redis channel layer, with a group send in half the round trips.

channels-redis 4.3's ``group_send`` waits for Redis four times for a group with members (drop
expired members; read the members; drop expired messages of their channels; the Lua script
that queues the message) and twice for a group nobody is in — an account whose agents have no
page open, which is most sends. Each wait is a wake-up of the broadcast thread that takes the
GIL back from the request threads (``channels_app.broadcast``): a group send was 4-5 % of
daphne's GIL samples while ingesting webhooks (py-spy, bench/README.md).

Here the same commands go as two pipelines: the members' cleanup and read together, then the
channels' cleanup and the script together — one round trip for an empty group, two otherwise.
A pipeline sends its commands in order on one connection, so what Redis does is unchanged; it
is not a transaction (neither was the original: another process can join the group between the
reads and the queueing, as before). Everything else is channels-redis's own (pinned in
``pyproject.toml``; ``tests/channels_app/test_layer.py`` checks the two against each other).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

log = logging.getLogger(__name__)

# channels-redis's script (``RedisChannelLayer.group_send``): queue the message on each
# channel's key that is under its capacity; answer how many were over.
GROUP_SEND_LUA = """
    local over_capacity = 0
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
    return over_capacity
"""


class RedisChannelLayer(_RedisChannelLayer):
    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        _, members = await pipe.execute()
        if not members:
            return  # nobody is in the group: one round trip
        channel_names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(
            channel_names, message
        )
        for index, channel_keys in by_connection.items():
            now = time.time()
            pipe = self.connection(index).pipeline(transaction=False)
            for channel_key in channel_keys:
                pipe.zremrangebyscore(channel_key, min=0, max=int(now) - int(self.expiry))
            args = [messages[k] for k in channel_keys] + [capacities[k] for k in channel_keys]
            pipe.eval(GROUP_SEND_LUA, len(channel_keys), *channel_keys, *args, now, self.expiry)
            over_capacity = (await pipe.execute())[-1]
            if over_capacity > 0:
                log.info(
                    "%s of %s channels over capacity in group %s",
                    over_capacity,
                    len(channel_names),
                    group,
                )
