"""The only module that touches the channel layer (DESIGN §9, STYLE).

Called from services inside ``transaction.on_commit``, so a client never sees a state that
was rolled back. Changes are grouped: one channel-layer message per account per transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import defaultdict, deque
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from channels_app import groups
from channels_app.events import MessageCreated, MessageStatus, WidgetMessage
from statuses.events import StatusChange

log = logging.getLogger(__name__)

AGENT_EVENTS = "agent.events"  # handled by the agent's consumer as ``agent_events``


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
    _group_send(groups.account(account_id), _agent_message(payloads))


def _agent_message(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The channel-layer message of a batch of account events (``AgentConsumer.agent_events``);
    the background sender merges the ones that wait together (``_mergeable``)."""
    return {"type": AGENT_EVENTS, "events": payloads}


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
# Agent events that waited for a group together go out as one channel-layer message of at most
# this many events (one socket frame for the agent's page).
MAX_MERGED = 100

Waiting = tuple[dict[str, Any], concurrent.futures.Future]
Sending = tuple[dict[str, Any], list[concurrent.futures.Future]]


class _BackgroundSender:
    """Sends channel-layer messages from an event loop of its own, so that the request that
    committed a change does not wait for Redis.

    Sends to one group go one after another, in the order they were submitted. What is submitted
    for a group while its previous send is in flight waits, and ``agent.events`` messages that
    waited together go as one message, their events in order (``MAX_MERGED`` at most). A group
    send over Redis is four round trips, each one a wake-up of this thread that must take the
    GIL from the request threads: one per change cost a create a fifth to a third of its CPU in
    one process (issue #12). Under load it is now one send per burst; an idle group's change
    goes at once. Merging also keeps a burst under a listening channel's capacity (100
    messages), past which channels-redis drops what it is given. The consumer drops an event
    older than one it sent already (``versions``), so order across processes is kept as before.

    ``submit`` wakes the loop only when it is not already due to look (one ``call_soon_threadsafe``
    per burst, not per change).
    """

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT, max_merged: int = MAX_MERGED) -> None:
        self.loop = asyncio.new_event_loop()
        self.limit = asyncio.Semaphore(max_in_flight)
        self.max_merged = max_merged
        self.lock = threading.Lock()
        self.submitted: list[tuple[Any, str, Waiting]] = []  # guarded by ``lock``
        self.woken = False  # guarded by ``lock``: the loop will look at ``submitted``
        self.queues: dict[tuple[int, str], deque[Waiting]] = {}  # the loop's own
        self.tasks: set[asyncio.Task[None]] = set()  # held so they are not garbage-collected
        thread = threading.Thread(target=self.loop.run_forever, name="broadcast", daemon=True)
        thread.start()

    def submit(self, layer: Any, group: str, message: dict[str, Any]) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.lock:
            self.submitted.append((layer, group, (message, future)))
            wake, self.woken = not self.woken, True
        if wake:
            self.loop.call_soon_threadsafe(self._take)
        return future

    def _take(self) -> None:
        with self.lock:
            submitted, self.submitted, self.woken = self.submitted, [], False
        for layer, group, waiting in submitted:
            key = (id(layer), group)
            queue = self.queues.get(key)
            if queue is None:
                queue = self.queues[key] = deque()
                task = self.loop.create_task(self._drain(layer, key, queue))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            queue.append(waiting)

    async def _drain(self, layer: Any, key: tuple[int, str], queue: deque[Waiting]) -> None:
        group = key[1]
        try:
            while queue:
                message, futures = self._next(queue)
                try:
                    async with self.limit:
                        await layer.group_send(group, message)
                except Exception as exc:
                    # Once per send, not per change in it: a merged send holds up to 100.
                    log.error("broadcast to %s failed (%d messages): %r", group, len(futures), exc)
                    _settle(futures, exc)
                else:
                    _settle(futures, None)
        finally:
            del self.queues[key]  # nothing was added since the last look: no await in between
            for _, future in queue:  # only if this task was cancelled
                future.cancel()

    def _next(self, queue: deque[Waiting]) -> Sending:
        """The next message for the group, with the futures it answers: the first waiting one,
        merged with the ``agent.events`` messages right behind it if it is one."""
        message, future = queue.popleft()
        if not _mergeable(message):
            return message, [future]
        events, futures = list(message["events"]), [future]
        while queue and _mergeable(queue[0][0]):
            more = queue[0][0]["events"]
            if len(events) + len(more) > self.max_merged:
                break
            events.extend(more)
            futures.append(queue.popleft()[1])
        if len(futures) == 1:
            return message, futures
        return _agent_message(events), futures


def _settle(futures: list[concurrent.futures.Future], exc: Exception | None) -> None:
    for future in futures:
        if future.set_running_or_notify_cancel():  # False: its submitter cancelled it
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)


def _mergeable(message: dict[str, Any]) -> bool:
    return message.get("type") == AGENT_EVENTS and message.keys() == {"type", "events"}


_sender_lock = threading.Lock()
_sender_instance: _BackgroundSender | None = None


def _sender() -> _BackgroundSender:
    global _sender_instance
    with _sender_lock:
        if _sender_instance is None:
            _sender_instance = _BackgroundSender()
        return _sender_instance
