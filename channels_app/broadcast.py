"""The only module that touches the channel layer (DESIGN §9, STYLE).

Called from services inside ``transaction.on_commit``, so a client never sees a state that
was rolled back. Changes are grouped: one channel-layer message per account per transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import defaultdict
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from channels_app import groups
from channels_app.events import MessageCreated, MessageStatus, WidgetMessage
from statuses.events import StatusChange

log = logging.getLogger(__name__)


def status_changes(changes: list[StatusChange]) -> None:
    by_account: dict[int, list[MessageStatus]] = defaultdict(list)
    for change in changes:
        by_account[change.account_id].append(MessageStatus.from_change(change))
    for account_id, events in by_account.items():
        _agent_events(account_id, events)


def message_created(account_id: int, event: MessageCreated) -> None:
    _agent_events(account_id, [event])


def widget_event(contact_id: int, event: WidgetMessage) -> None:
    _group_send(
        groups.widget_contact(contact_id), {"type": "widget.event", "event": event.as_payload()}
    )


def _agent_events(account_id: int, events: list[MessageStatus | MessageCreated]) -> None:
    # The layer carries plain dicts; the consumer forwards them as an ``AgentEvents`` frame.
    payloads = [event.as_payload() for event in events]
    _group_send(groups.account(account_id), {"type": "agent.events", "events": payloads})


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer lives on the server's own event loop: send there, in line.
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            # A lost broadcast must never undo a committed status: clients re-read on reconnect.
            log.exception("broadcast to %s failed", group)
        return
    # Over Redis, hand the send to a background loop: the request that committed the change
    # does not wait for the round-trip (it cost ~4 ms of each webhook in the benchmark).
    _sender().submit(layer, group, message)


# Sends in flight at once. channels-redis's pool holds at most 100 connections per host and
# fails a send beyond that at once (redis.MaxConnectionsError): at ~600 single-status webhooks
# a second (bench/run.py, phase scale) unbounded sends lost 28 ticks in a few seconds. Beyond
# this many, a send waits its turn here instead.
MAX_IN_FLIGHT = 32


class _BackgroundSender:
    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.loop = asyncio.new_event_loop()
        self.limit = asyncio.Semaphore(max_in_flight)
        thread = threading.Thread(target=self.loop.run_forever, name="broadcast", daemon=True)
        thread.start()

    def submit(self, layer: Any, group: str, message: dict[str, Any]) -> concurrent.futures.Future:
        future = asyncio.run_coroutine_threadsafe(self._send(layer, group, message), self.loop)
        future.add_done_callback(lambda done: _log_failure(done, group))
        return future

    async def _send(self, layer: Any, group: str, message: dict[str, Any]) -> None:
        async with self.limit:
            await layer.group_send(group, message)


def _log_failure(done: concurrent.futures.Future, group: str) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("broadcast to %s failed: %r", group, done.exception())


_sender_lock = threading.Lock()
_sender_instance: _BackgroundSender | None = None


def _sender() -> _BackgroundSender:
    global _sender_instance
    with _sender_lock:
        if _sender_instance is None:
            _sender_instance = _BackgroundSender()
        return _sender_instance
