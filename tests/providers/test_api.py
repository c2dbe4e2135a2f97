import hashlib
import hmac
import json

import pytest

from statuses import signing
from statuses.machine import Status
from statuses.providers import api, web_widget
from statuses.providers.base import SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.chat_support import (  # noqa: F401 (fixtures)
    CORRELATION_ID,
    MESSAGE_ID,
    client_fixture,
    outgoing,
    refused_port,
    request,
    server_fixture,
)

SECRET = "whsec_test"

# --- signing ----------------------------------------------------------------------------


def test_sign_matches_the_documented_scheme():
    body = b'{"id":"1"}'
    expected = hmac.new(SECRET.encode(), b'1767225600.{"id":"1"}', hashlib.sha256).hexdigest()
    assert signing.sign(SECRET, body, 1767225600) == f"t=1767225600,v1={expected}"


def test_verify_signature_round_trip_and_tolerance():
    body = b'{"id":"1"}'
    header = signing.sign(SECRET, body, 1000)
    assert signing.verify_signature(SECRET, header, body, now=1000)
    assert signing.verify_signature(SECRET, header, body, now=1300)
    assert not signing.verify_signature(SECRET, header, body, now=1301)
    assert not signing.verify_signature(SECRET, header, body, now=699)
    assert signing.verify_signature(SECRET, header, body, tolerance=10_000, now=5000)


@pytest.mark.parametrize(
    "header",
    [None, "", "t=1000", "v1=abc", "t=x,v1=abc", "t=1000,v1=" + "0" * 64, "nonsense"],
)
def test_verify_signature_refuses_bad_headers(header):
    assert not signing.verify_signature(SECRET, header, b"{}", now=1000)


def test_verify_signature_refuses_other_secret_or_body():
    header = signing.sign(SECRET, b"{}", 1000)
    assert not signing.verify_signature("other", header, b"{}", now=1000)
    assert not signing.verify_signature(SECRET, header, b"{ }", now=1000)
    assert not signing.verify_signature("", header, b"{}", now=1000)


def test_verify_signature_accepts_any_of_several_v1():
    good = signing.sign(SECRET, b"{}", 1000).split(",")[1]
    assert signing.verify_signature(SECRET, f"t=1000,v1={'0' * 64},{good}", b"{}", now=1000)


# --- api adapter ------------------------------------------------------------------------


def config_for(server, path="/hooks/tickmark"):
    return {"webhook_url": server.url + path, "hmac_secret": SECRET}


def test_api_inbox_takes_no_webhooks():
    req = request(b'{"status":"delivered"}', {"X-Tickmark-Signature": "t=1,v1=x"})
    assert api.verify(req, {"hmac_secret": SECRET}) is False
    assert api.handshake(req, {}) is None
    result = api.parse(req, {})
    assert result.statuses == [] and result.watermarks == [] and result.inbound == []


def test_send_posts_a_signed_message(server, client):
    server.queue(Reply(202, {"id": "ext-77"}))
    message = outgoing(to="customer-42", template={"name": "welcome"})
    result = api.send(client, config_for(server), message)
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.status == Status.SENT
    assert result.provider_message_id == "ext-77"
    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == "/hooks/tickmark"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == {
        "id": MESSAGE_ID,
        "to": "customer-42",
        "content": "Hello there",
        "template": {"name": "welcome"},
        "correlation_id": CORRELATION_ID,
    }
    header = sent.headers["x-tickmark-signature"]
    assert signing.verify_signature(SECRET, header, sent.body)


def test_send_without_id_in_answer_uses_our_id(server, client):
    server.queue(Reply(200, "ok"))
    result = api.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id == MESSAGE_ID


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_send_rejected(server, client, status):
    server.queue(Reply(status, {"error": "nope"}))
    result = api.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == str(status)
    assert "nope" in result.error_detail


@pytest.mark.parametrize("status", [429, 500, 503])
def test_send_transient(server, client, status):
    server.queue(Reply(status, "later", headers={"Retry-After": "9"}))
    result = api.send(client, config_for(server), outgoing())
    assert result.outcome == SendOutcome.TRANSIENT
    assert result.retry_after == 9


def test_send_timeout_is_unknown(server, client):
    server.queue(Reply(200, {"id": "x"}, delay=1.0))
    assert api.send(client, config_for(server), outgoing()).outcome == SendOutcome.UNKNOWN


def test_send_connection_refused_is_transient(client):
    config = {"webhook_url": f"http://127.0.0.1:{refused_port()}/x", "hmac_secret": SECRET}
    assert api.send(client, config, outgoing()).outcome == SendOutcome.TRANSIENT


@pytest.mark.parametrize("url", ["", "ftp://example.com/x", "not a url"])
def test_send_to_an_invalid_url_is_rejected(client, url):
    result = api.send(client, {"webhook_url": url, "hmac_secret": SECRET}, outgoing())
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "invalid_webhook_url"


# --- web widget -------------------------------------------------------------------------


def test_web_widget_send_is_accepted_at_once(client):
    result = web_widget.send(client, {}, outgoing())
    assert result.outcome == SendOutcome.ACCEPTED
    assert result.provider_message_id == MESSAGE_ID
    assert result.status == Status.SENT


def test_web_widget_takes_no_webhooks():
    req = request(b"{}")
    assert web_widget.verify(req, {}) is False
    assert web_widget.handshake(req, {}) is None
    assert web_widget.parse(req, {}).statuses == []
