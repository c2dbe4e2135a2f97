"""A live agent socket stays open when nothing happens (issue #10 item 5).

A real daphne on the Redis channel layer and a real WebSocket client: the socket idles for 30 s
(several of channels-redis's 5 s blocking waits, which redis-py 8's default 5 s socket timeout
used to cut with ``TimeoutError`` → close 1011), then still receives a ``message.status`` event.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
import websockets
from django.db import connections
from django.test import Client

from statuses import outbound, services
from tests.e2e.conftest import Stack, current_database_url, free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)"),
]

IDLE_SECONDS = 30


@pytest.fixture
def server(tmp_path, settings):
    stack = Stack(current_database_url(), free_port(), tmp_path)
    settings.PUBLIC_BASE_URL = stack.public_url
    try:
        stack.start_server()
        yield stack
    finally:
        stack.stop_all()


def test_an_idle_agent_socket_still_receives_status_events_after_30_seconds(
    server, account, make_inbox, django_user_model
):
    from inbox.models import Membership

    user = django_user_model.objects.create_user("agent", password="x" * 12)
    Membership.objects.create(user=user, account=account)
    web = Client()
    web.force_login(user)
    session = web.cookies["sessionid"].value
    inbox = make_inbox(account, "api", webhook_url="http://127.0.0.1:9/x", hmac_secret="s")
    message, _ = outbound.message_create_outgoing(
        account=account, inbox=inbox, to="customer-1", content="Hi"
    )
    url = f"ws://127.0.0.1:{server.server_port}/ws/agent/"

    async def idle_then_receive():
        async with websockets.connect(
            url,
            origin=server.public_url,
            additional_headers={"Cookie": f"sessionid={session}"},
            ping_interval=None,  # idle means idle: no client pings keep anything busy
        ) as socket:
            with pytest.raises(TimeoutError):  # nothing arrives while idle, nothing breaks
                await asyncio.wait_for(socket.recv(), IDLE_SECONDS)
            # The status change commits in this process; its broadcast goes through Redis.
            await asyncio.to_thread(report_delivered)
            return json.loads(await asyncio.wait_for(socket.recv(), 10))

    def report_delivered():
        try:
            services.message_status_report(message=message, status="delivered", source="api")
        finally:
            connections.close_all()

    frame = asyncio.run(idle_then_receive())
    statuses = [e for e in frame["events"] if e.get("type") == "message.status"]
    assert statuses and statuses[0]["message_id"] == str(message.id)
    assert statuses[0]["status"] == "delivered"
    assert "TimeoutError" not in server.processes[0].log.read_text()
