"""Django requests through the production handler (config/handler.py): ``request_started``, the
view and ``request_finished`` run in one hop, on the thread the view runs on, so the database
connection the view used is the one checked and given back to the pool; a streamed response
(a static file) is closed only once it has been sent. Each request finishes exactly once."""

import threading
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core import signals
from django.db import connection
from django.db.backends.signals import connection_created

from config.handler import SyncChainASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def seen():
    """(event, thread, whether that thread holds an open connection) in order."""
    events: list[tuple[str, int, bool]] = []

    def record(name):
        def receiver(**kwargs):
            events.append((name, threading.get_ident(), connection.connection is not None))

        return receiver

    receivers = {
        signals.request_started: record("started"),
        signals.request_finished: record("finished"),
        connection_created: record("connected"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False)
    yield events
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=SyncChainASGIHandler())
    return httpx.AsyncClient(transport=transport, base_url=settings.PUBLIC_BASE_URL)


async def test_the_view_its_connection_and_both_signals_share_one_thread(seen):
    async with client() as http:
        response = await http.get("/readyz")  # one query on the request's connection
    assert response.status_code == 200
    assert [event for event, _, _ in seen] == ["started", "connected", "finished"]
    threads = {thread for _, thread, _ in seen}
    assert len(threads) == 1 and threads != {threading.get_ident()}  # not the event loop's
    # close_old_connections (connected before this test's receiver) already gave it back to
    # the pool (an in-memory SQLite test database is never closed: Django keeps it).
    if connection.vendor == "postgresql":
        assert seen[-1][2] is False


async def test_every_request_finishes_once_on_its_own_thread(seen):
    async with client() as http:
        for _ in range(6):
            assert (await http.get("/readyz")).status_code == 200
    started = [thread for event, thread, _ in seen if event == "started"]
    finished = [thread for event, thread, _ in seen if event == "finished"]
    assert len(started) == len(finished) == 6
    assert started == finished


async def test_a_streamed_static_file_is_sent_whole_then_closed(seen):
    async with client() as http:
        response = await http.get("/static/favicon.svg")
    assert response.status_code == 200
    assert response.content == (Path(settings.BASE_DIR) / "static" / "favicon.svg").read_bytes()
    assert [event for event, _, _ in seen] == ["started", "finished"]
