"""Helpers for the TikTok, LINE, Telegram, Viber, email, API and web widget adapter tests."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import strategies as st

from statuses.providers.base import OutgoingMessage, WebhookRequest
from tests.fakes.recorder import RecordingServer

RECEIVED_AT = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)  # 5 s after the TikTok vector's t
MESSAGE_ID = "0123456789abcdef0123456789abcdef"
CORRELATION_ID = f"tm1.{MESSAGE_ID}.1"


def request(
    body: bytes | str | dict | list = b"",
    headers: dict[str, str] | None = None,
    received_at: datetime = RECEIVED_AT,
) -> WebhookRequest:
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return WebhookRequest(
        method="POST",
        url="https://inbox.example.com/webhooks/x/1/",
        path="/webhooks/x/1/",
        query={},
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        received_at=received_at,
    )


def outgoing(to: str = "U1234", content: str = "Hello there", **extra) -> OutgoingMessage:
    fields = {
        "message_id": MESSAGE_ID,
        "to": to,
        "content": content,
        "template": None,
        "correlation_id": CORRELATION_ID,
        "status_callback_url": "https://inbox.example.com/webhooks/x/1/",
    }
    fields.update(extra)
    return OutgoingMessage(**fields)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


def json_shapes(keys: list[str]) -> st.SearchStrategy:
    """Objects built from ``keys`` (and a few others) with arbitrary JSON values."""
    names = st.sampled_from(keys) | st.text(max_size=5)
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.dictionaries(names, children, max_size=5) | st.lists(children, max_size=2)
        ),
        max_leaves=12,
    )


def refused_port() -> int:
    """Return a local port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="server")
def server_fixture():
    with RecordingServer() as running:
        yield running


@pytest.fixture(name="client")
def client_fixture():
    with httpx.Client(timeout=httpx.Timeout(2.0, read=0.5)) as http:
        yield http
