"""Transport failures map the same way for every HTTP adapter written on the shared plumbing."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from statuses.providers import (
    bandwidth,
    facebook,
    instagram,
    twilio,
    whatsapp_360dialog,
    whatsapp_cloud,
)
from statuses.providers.base import SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import outgoing, recording_server_fixture, unused_port

PROVIDERS = {
    "whatsapp_cloud": (
        whatsapp_cloud,
        {"phone_number_id": "1065", "access_token": "t"},
        {"messages": [{"id": "wamid.X"}]},
    ),
    "whatsapp_360dialog": (whatsapp_360dialog, {"api_key": "k"}, {"messages": [{"id": "wamid.X"}]}),
    "facebook": (facebook, {"page_access_token": "t"}, {"recipient_id": "1", "message_id": "m_X"}),
    "instagram": (
        instagram,
        {"ig_user_id": "1784", "access_token": "t"},
        {"recipient_id": "1", "message_id": "m_X"},
    ),
    "twilio": (
        twilio,
        {"account_sid": "AC1", "auth_token": "t", "from_number": "+1555"},
        {"sid": "SMX", "status": "queued"},
    ),
    "bandwidth": (
        bandwidth,
        {
            "account_id": "1",
            "application_id": "a",
            "username": "u",
            "password": "p",
            "from_number": "+1555",
        },
        {"id": "bwX"},
    ),
}
running_server, server = recording_server_fixture()


@pytest.fixture(params=list(PROVIDERS))
def provider(request):
    return PROVIDERS[request.param]


def send(provider, base_url, timeout=2.0):
    module, config, _ = provider
    with httpx.Client(timeout=timeout) as client:
        return module.send(client, {**config, "api_base_url": base_url}, outgoing())


def test_accepted(provider, server):
    server.queue(Reply(200, provider[2]))
    result = send(provider, server.url)
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id.endswith("X")
    assert len(server.requests) == 1


def test_rate_limited_with_retry_after(provider, server):
    server.queue(Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"}))
    result = send(provider, server.url)
    assert (result.outcome, result.retry_after) == (SendOutcome.TRANSIENT, 7.0)


def test_retry_after_as_an_http_date(provider, server):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    server.queue(Reply(503, "busy", headers={"Retry-After": when}))
    result = send(provider, server.url)
    assert result.outcome == SendOutcome.TRANSIENT
    assert 100 < result.retry_after <= 120


def test_server_error_is_transient(provider, server):
    server.queue(Reply(500, "Internal Server Error"))
    result = send(provider, server.url)
    assert (result.outcome, result.retry_after) == (SendOutcome.TRANSIENT, None)


def test_timeout_after_sending_is_unknown(provider, server):
    server.queue(Reply(200, provider[2], delay=0.6))
    result = send(provider, server.url, timeout=0.1)
    assert result.outcome == SendOutcome.UNKNOWN
    assert len(server.requests) == 1  # it did arrive: a blind resend would duplicate it


def test_connection_dropped_without_answer_is_unknown(provider, server):
    server.queue(Reply(drop=True))
    assert send(provider, server.url).outcome == SendOutcome.UNKNOWN


def test_connection_refused_is_transient(provider):
    result = send(provider, f"http://127.0.0.1:{unused_port()}")
    assert (result.outcome, result.error_code) == (SendOutcome.TRANSIENT, "connection_failed")


def test_success_without_an_id_is_unknown(provider, server):
    server.queue(Reply(200, {}))
    assert send(provider, server.url).outcome == SendOutcome.UNKNOWN


def test_unusable_base_url_is_rejected(provider):
    result = send(provider, "ftp://127.0.0.1")
    assert (result.outcome, result.error_code) == (SendOutcome.REJECTED, "invalid_request")
