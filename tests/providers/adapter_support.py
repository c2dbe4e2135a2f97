"""Shared helpers for the Meta, Twilio and Bandwidth adapter tests."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from statuses.providers.base import MalformedPayload, OutgoingMessage, WebhookRequest
from tests.fakes.recorder import RecordingServer

RECEIVED_AT = datetime(2026, 8, 12, 16, 0, tzinfo=UTC)
CORRELATION_ID = "tm1.0123456789abcdef0123456789abcdef.1"


def make_request(
    body: bytes | str | dict | list = b"",
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    url: str = "https://inbox.example.com/webhooks/test/1/",
    query: dict[str, str] | None = None,
) -> WebhookRequest:
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return WebhookRequest(
        method=method,
        url=url,
        path="/" + url.split("/", 3)[-1].split("?")[0],
        query=query or {},
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        received_at=RECEIVED_AT,
    )


def hub_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_meta_request(payload: dict | bytes, secret: str = "test_app_secret") -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return make_request(body, headers={"X-Hub-Signature-256": hub_signature(body, secret)})


def outgoing(
    to: str = "+16505076520", content: str = "Hello there", template: dict | None = None
) -> OutgoingMessage:
    return OutgoingMessage(
        message_id="0123456789abcdef0123456789abcdef",
        to=to,
        content=content,
        template=template,
        correlation_id=CORRELATION_ID,
        status_callback_url="https://inbox.example.com/webhooks/twilio_sms/1/",
    )


def recording_server_fixture():
    """Return ``(running_server, server)`` fixtures for a test module.

    One RecordingServer per module (stopping one takes half a second); ``server`` hands it to
    each test with its recorded requests and queued replies cleared.
    """

    @pytest.fixture(scope="module")
    def running_server():
        with RecordingServer() as running:
            yield running

    @pytest.fixture
    def server(running_server):
        with running_server._lock:
            running_server.requests.clear()
            running_server.replies.clear()
        return running_server

    return running_server, server


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)

# Property tests run beside other suites on a busy machine: judge them on results, not speed.
fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_malformed(provider, request: WebhookRequest, config: dict) -> None:
    """Parse; a body that cannot be parsed may only ever raise ``MalformedPayload``."""
    with contextlib.suppress(MalformedPayload):
        provider.parse(request, config)
