import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from statuses.machine import Status
from statuses.providers import whatsapp_360dialog
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import (
    CORRELATION_ID,
    fuzz,
    make_request,
    outgoing,
    parse_or_malformed,
    recording_server_fixture,
)
from tests.providers.meta_payloads import WAMID, wa_payload, wa_status, wa_value

CONFIG = {"api_key": "test-d360-key", "webhook_token": "s3cret-webhook-token"}
running_server, server = recording_server_fixture()


def test_verify_compares_the_configured_header():
    body = b'{"entry":[]}'
    assert whatsapp_360dialog.verify(
        make_request(body, headers={"X-Webhook-Token": "s3cret-webhook-token"}), CONFIG
    )


@pytest.mark.parametrize(
    "headers, config",
    [
        ({}, CONFIG),
        ({"X-Webhook-Token": ""}, CONFIG),
        ({"X-Webhook-Token": "s3cret-webhook-toke"}, CONFIG),
        ({"X-Webhook-Token": "s3cret-webhook-token"}, {}),
        ({"X-Webhook-Token": ""}, {"webhook_token": ""}),
        ({"X-Hub-Signature-256": "sha256=00"}, CONFIG),
    ],
)
def test_verify_refuses_missing_or_wrong_tokens(headers, config):
    assert not whatsapp_360dialog.verify(make_request(b"{}", headers=headers), config)


def test_no_handshake():
    request = make_request(method="GET", query={"hub.mode": "subscribe", "hub.challenge": "1"})
    assert whatsapp_360dialog.handshake(request, CONFIG) is None


def test_parses_the_meta_format_batch():
    payload = wa_payload(
        wa_value([wa_status("wamid.A", "sent"), wa_status("wamid.A", "delivered")]),
        wa_value([wa_status("wamid.B", "read"), wa_status("wamid.C", "played")]),
    )
    statuses = whatsapp_360dialog.parse(make_request(payload), CONFIG).statuses
    assert [(s.provider_message_id, s.status) for s in statuses] == [
        ("wamid.A", Status.SENT),
        ("wamid.A", Status.DELIVERED),
        ("wamid.B", Status.READ),
        ("wamid.C", Status.READ),
    ]


def test_parses_the_legacy_on_premise_shape():
    payload = {
        "statuses": [
            {
                "id": "gBGGEgZHMlEfAgkM1RBkhDRr7t8",
                "recipient_id": "4915112345678",
                "status": "failed",
                "timestamp": "1700000000",
                "type": "message",
                "errors": [
                    {
                        "code": 470,
                        "title": "Failed to send message because you are "
                        "outside the support window for freeform messages to this user.",
                    }
                ],
            }
        ]
    }
    [update] = whatsapp_360dialog.parse(make_request(payload), CONFIG).statuses
    assert update.status == Status.FAILED
    assert update.error_code == "470"
    assert update.error_title.startswith("Failed to send message because")


@pytest.mark.parametrize("body", [b"{", b"[1]", b'{"entry": "x"}', b'{"statuses": {}}'])
def test_malformed_bodies(body):
    with pytest.raises(MalformedPayload):
        whatsapp_360dialog.parse(make_request(body), CONFIG)


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_malformed(body):
    parse_or_malformed(whatsapp_360dialog, make_request(body), CONFIG)


def send(server, message=None):
    with httpx.Client(timeout=2) as client:
        return whatsapp_360dialog.send(
            client, {**CONFIG, "api_base_url": server.url}, message or outgoing()
        )


def test_send_accepted(server):
    server.queue(Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": WAMID}]}))
    result = send(server)
    assert (result.outcome, result.provider_message_id) == (SendOutcome.ACCEPTED, WAMID)
    [request] = server.requests
    assert request.path == "/messages"
    assert request.headers["d360-api-key"] == "test-d360-key"
    assert "authorization" not in request.headers
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505076520",
        "type": "text",
        "text": {"body": "Hello there"},
        "biz_opaque_callback_data": CORRELATION_ID,
    }


def test_send_rejected_meta_error(server):
    server.queue(
        Reply(
            400,
            {
                "error": {
                    "message": "(#131026) Message undeliverable",
                    "type": "OAuthException",
                    "code": 131026,
                    "error_data": {"messaging_product": "whatsapp", "details": "Undeliverable"},
                    "fbtrace_id": "A1",
                }
            },
        )
    )
    result = send(server)
    assert result.outcome == SendOutcome.REJECTED
    assert (result.error_code, result.error_detail) == ("131026", "Undeliverable")


def test_send_rejected_on_premise_error(server):
    server.queue(
        Reply(
            400,
            {
                "meta": {"api_status": "stable"},
                "errors": [{"code": 1013, "title": "User is not valid"}],
            },
        )
    )
    result = send(server)
    assert (result.outcome, result.error_code, result.error_title) == (
        SendOutcome.REJECTED,
        "1013",
        "User is not valid",
    )


def test_send_unauthorized_is_rejected(server):
    server.queue(Reply(401, "Unauthorized"))
    result = send(server)
    assert (result.outcome, result.error_code) == (SendOutcome.REJECTED, "http_401")
