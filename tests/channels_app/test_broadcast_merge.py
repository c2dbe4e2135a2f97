"""The background sender sends one group's messages one after another, in order, and sends the
agent events that waited together as one message (issue #12: one Redis group send per change
cost a message create a fifth of its CPU)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

from channels_app import broadcast


class GatedLayer:
    """Records what it is asked to send; each send waits until the gate is open."""

    def __init__(self, fail_first: bool = False) -> None:
        self.gate = threading.Event()
        self.calls: list[tuple[str, dict]] = []
        self.in_flight: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.fail_first = fail_first

    async def group_send(self, group: str, message: dict) -> None:
        self.in_flight[group] = self.in_flight.get(group, 0) + 1
        self.most[group] = max(self.most.get(group, 0), self.in_flight[group])
        try:
            while not self.gate.is_set():
                await asyncio.sleep(0.001)
            self.calls.append((group, message))
            if self.fail_first and len(self.calls) == 1:
                raise ConnectionError("redis went away")
        finally:
            self.in_flight[group] -= 1


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def agent(*numbers: int) -> dict:
    return {"type": "agent.events", "events": [{"n": n} for n in numbers]}


def submit_all(sender, layer, messages: list[dict], group: str = "account-1") -> list:
    """The first message's send starts (and waits at the gate) before the others are submitted;
    they are all taken by the sender's loop before the gate opens."""
    futures = [sender.submit(layer, group, messages[0])]
    wait_until(lambda: layer.in_flight.get(group) == 1)
    futures += [sender.submit(layer, group, message) for message in messages[1:]]
    wait_until(lambda: not sender.submitted)
    layer.gate.set()
    done, _ = concurrent.futures.wait(futures, timeout=10)
    assert len(done) == len(futures)
    return futures


def test_agent_events_that_waited_go_out_as_one_message_in_order():
    sender = broadcast._BackgroundSender()  # noqa: SLF001 - the sender under test, on its own
    layer = GatedLayer()
    futures = submit_all(sender, layer, [agent(n) for n in range(50)])
    assert all(future.exception() is None for future in futures)
    sent = [event["n"] for _, message in layer.calls for event in message["events"]]
    assert sent == list(range(50))
    # The first send went alone (nothing was waiting yet); the 49 that waited for it went in one.
    assert [len(message["events"]) for _, message in layer.calls] == [1, 49]
    assert layer.calls[1][1] == agent(*range(1, 50))


def test_a_merged_message_holds_at_most_max_merged_events_and_never_splits_one():
    sender = broadcast._BackgroundSender(max_merged=10)  # noqa: SLF001
    layer = GatedLayer()
    messages = [agent(0)] + [agent(3 * k + 1, 3 * k + 2, 3 * k + 3) for k in range(12)]
    submit_all(sender, layer, messages)
    sizes = [len(message["events"]) for _, message in layer.calls]
    assert sizes == [1, 9, 9, 9, 9]  # three messages of 3 events each: 9 fit in 10, 12 do not
    sent = [event["n"] for _, message in layer.calls for event in message["events"]]
    assert sent == list(range(37))


def test_other_messages_are_sent_as_they_are_and_keep_their_place():
    sender = broadcast._BackgroundSender()  # noqa: SLF001
    layer = GatedLayer()
    widget_a = {"type": "widget.event", "event": {"id": "a"}}
    widget_b = {"type": "widget.event", "event": {"id": "b"}}
    extra = {"type": "agent.events", "events": [{"n": 9}], "note": "not only events"}
    messages = [agent(1), widget_a, agent(2), agent(3), extra, agent(4), widget_b]
    submit_all(sender, layer, messages)
    assert [message for _, message in layer.calls] == [
        agent(1),
        widget_a,
        agent(2, 3),
        extra,
        agent(4),
        widget_b,
    ]


def test_one_group_has_one_send_in_flight_and_groups_share_the_limit():
    sender = broadcast._BackgroundSender(max_in_flight=8)  # noqa: SLF001
    layer = GatedLayer()
    futures = [sender.submit(layer, f"g{n % 40}", agent(n)) for n in range(400)]
    wait_until(lambda: sum(layer.in_flight.values()) == 8)
    time.sleep(0.05)  # had more been let through, they would be in flight by now
    assert sum(layer.in_flight.values()) == 8
    layer.gate.set()
    concurrent.futures.wait(futures, timeout=10)
    assert all(future.done() and future.exception() is None for future in futures)
    assert max(layer.most.values()) == 1
    for group in {f"g{n}" for n in range(40)}:
        sent = [e["n"] for g, m in layer.calls if g == group for e in m["events"]]
        assert sent == sorted(sent) and len(sent) == 10


def test_a_failed_send_fails_its_own_futures_and_the_group_goes_on():
    sender = broadcast._BackgroundSender()  # noqa: SLF001
    layer = GatedLayer(fail_first=True)
    first, second, third = submit_all(sender, layer, [agent(1), agent(2), agent(3)])
    assert isinstance(first.exception(), ConnectionError)
    assert second.exception() is None and third.exception() is None
    assert [message for _, message in layer.calls] == [agent(1), agent(2, 3)]


def test_a_failed_merged_send_is_logged_once(caplog):
    class DownLayer(GatedLayer):
        async def group_send(self, group: str, message: dict) -> None:
            await super().group_send(group, message)
            raise ConnectionError("redis went away")

    sender = broadcast._BackgroundSender()  # noqa: SLF001
    layer = DownLayer()
    with caplog.at_level(logging.ERROR, logger="channels_app.broadcast"):
        futures = submit_all(sender, layer, [agent(n) for n in range(6)])
    assert all(isinstance(future.exception(), ConnectionError) for future in futures)
    assert [len(message["events"]) for _, message in layer.calls] == [1, 5]
    failures = [r.getMessage() for r in caplog.records if "broadcast to" in r.getMessage()]
    assert len(failures) == 2 and "(5 messages)" in failures[1]


def test_a_change_whose_submitter_cancelled_it_does_not_stop_the_group():
    sender = broadcast._BackgroundSender()  # noqa: SLF001
    layer = GatedLayer()
    first = sender.submit(layer, "account-1", agent(1))
    wait_until(lambda: layer.in_flight.get("account-1") == 1)
    second = sender.submit(layer, "account-1", agent(2))
    third = sender.submit(layer, "account-1", agent(3))
    wait_until(lambda: not sender.submitted)
    assert second.cancel()  # nobody waits for it any more; it still goes with the third
    layer.gate.set()
    assert first.result(timeout=5) is None and third.result(timeout=5) is None
    after = sender.submit(layer, "account-1", agent(4))
    assert after.result(timeout=5) is None
    assert [message for _, message in layer.calls] == [agent(1), agent(2, 3), agent(4)]
