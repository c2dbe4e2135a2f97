"""Bandwidth Messaging v2: a JSON array of events, HTTP Basic callback credentials."""

import base64
import json
from datetime import UTC, datetime

import pytest

from inbox.models import Message
from statuses import correlation
from statuses.machine import UNRECOGNIZED, Status
from statuses.models import StatusEvent
from statuses.providers import bandwidth
from tests.webhooks.conftest import (
    CONTACTS,
    assert_entry_skipped,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    post_raw,
    post_signed,
    record_send,
    sign,
)

pytestmark = pytest.mark.django_db

# Our messages were created before the provider times these bodies carry: lifecycle timestamps
# never precede the creation (DESIGN §5.1).
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
TO = CONTACTS["bandwidth_sms"]


def event(kind, message_id, time="2026-08-12T15:30:16Z", tag="", **extra):
    return {
        "type": kind,
        "time": time,
        "description": extra.pop("description", kind),
        "to": TO,
        "message": {
            "id": message_id,
            "owner": "+15552221111",
            "applicationId": "cfd4fb83-7531-4acc-b471-42d0bb76a65c",
            "time": "2026-08-12T15:30:15.876Z",
            "segmentCount": 1,
            "direction": "out",
            "to": [TO],
            "from": "+15552221111",
            "text": "",
            "tag": tag,
        },
        **extra,
    }


def test_array_with_several_statuses_applies_every_one(client, bandwidth_inbox, make_message):
    a = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-A", created_at=CREATED)
    b = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-B", created_at=CREATED)
    body = [
        event("message-sending", "bw-A", "2026-08-12T15:30:15Z"),
        event("message-delivered", "bw-A", "2026-08-12T15:30:20Z"),
        event(
            "message-failed", "bw-B", errorCode=4406, description="rejected-unallocated-to-number"
        ),
    ]
    assert post_signed(client, bandwidth_inbox, body).status_code == 200
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.delivered_at.isoformat()) == (Status.DELIVERED, "2026-08-12T15:30:20+00:00")
    assert (b.status, b.error_code, b.error_title) == (
        Status.FAILED,
        "4406",
        bandwidth.ERRORS["4406"].title,
    )
    assert b.error_detail == "rejected-unallocated-to-number"
    assert StatusEvent.objects.filter(inbox=bandwidth_inbox).count() == 3


def test_tag_correlates_when_the_send_response_was_lost(client, bandwidth_inbox, make_message):
    message = make_message(bandwidth_inbox, to=TO)
    tag = correlation.make(message.id, 1)
    assert (
        post_signed(
            client, bandwidth_inbox, [event("message-delivered", "bw-T", tag=tag)]
        ).status_code
        == 200
    )
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.DELIVERED, "bw-T")


def test_duplicate_is_one_event(client, bandwidth_inbox, make_message):
    message = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-D")
    body = [event("message-delivered", "bw-D")]
    post_signed(client, bandwidth_inbox, body)
    post_signed(client, bandwidth_inbox, body)
    assert StatusEvent.objects.get(inbox=bandwidth_inbox).duplicate_count == 1
    message.refresh_from_db()
    assert message.version == 2


def test_out_of_order_converges(client, bandwidth_inbox, make_message):
    message = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-O", created_at=CREATED)
    post_signed(
        client, bandwidth_inbox, [event("message-delivered", "bw-O", "2026-08-12T15:30:20Z")]
    )
    post_signed(client, bandwidth_inbox, [event("message-sending", "bw-O", "2026-08-12T15:30:15Z")])
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.sent_at.isoformat() == "2026-08-12T15:30:15+00:00"


def test_parked_then_applied(client, bandwidth_inbox, make_message):
    message = make_message(bandwidth_inbox, to=TO)
    post_signed(client, bandwidth_inbox, [event("message-delivered", "bw-P")])
    assert StatusEvent.objects.get(inbox=bandwidth_inbox).outcome == "parked"
    record_send(message, "bw-P")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"tickmark-callbacks:wrong-password").decode(),
        "Basic " + base64.b64encode(b"someone-else:cb-pass-3Rk9vLw2").decode(),
        "Basic " + base64.b64encode(b"tickmark-callbackscb-pass-3Rk9vLw2").decode(),
        "Bearer cb-pass-3Rk9vLw2",
        "Basic !!!not-base64",
    ],
)
def test_wrong_credentials_are_403(client, bandwidth_inbox, make_message, authorization):
    message = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-F")
    raw = json.dumps([event("message-delivered", "bw-F")]).encode()
    response = post_raw(client, bandwidth_inbox, raw, headers={"Authorization": authorization})
    assert_refused_and_nothing_changed(response, bandwidth_inbox, [message])


def test_missing_credentials_are_403(client, bandwidth_inbox, make_message):
    message = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-F")
    raw = json.dumps([event("message-delivered", "bw-F")]).encode()
    assert_refused_and_nothing_changed(
        post_raw(client, bandwidth_inbox, raw), bandwidth_inbox, [message]
    )


def test_credentials_are_not_kept_with_the_delivery(client, bandwidth_inbox):
    from statuses.models import WebhookDelivery

    post_signed(client, bandwidth_inbox, [])
    assert "authorization" not in WebhookDelivery.objects.get(inbox=bandwidth_inbox).headers


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "message-delivered"}',
        b"[",
    ],
)
def test_malformed_is_400_and_kept(client, bandwidth_inbox, raw):
    assert_malformed_kept(post_signed(client, bandwidth_inbox, raw), bandwidth_inbox, raw)


# Issue #9: a bad event of a readable array is recorded and skipped with 200, not a 400.
@pytest.mark.parametrize(
    "raw",
    [
        b'[{"type": "message-delivered"}]',
        json.dumps([event("message-sent", "x", time="yesterday")]).encode(),
    ],
)
def test_malformed_event_is_recorded_and_skipped(client, bandwidth_inbox, raw):
    assert_entry_skipped(post_signed(client, bandwidth_inbox, raw), bandwidth_inbox, raw)


def test_unknown_type_is_an_event_that_changes_nothing(client, bandwidth_inbox, make_message):
    message = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-U")
    assert (
        post_signed(client, bandwidth_inbox, [event("message-rerouted", "bw-U")]).status_code == 200
    )
    stored = StatusEvent.objects.get(inbox=bandwidth_inbox)
    assert (stored.status, stored.raw_status, stored.message_id) == (
        UNRECOGNIZED,
        "message-rerouted",
        message.id,
    )
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.QUEUED, 1)


def test_inbound_stored_once_in_the_conversation(client, bandwidth_inbox, make_message):
    earlier = make_message(bandwidth_inbox, to=TO, provider_message_id="bw-out")
    inbound = event("message-received", "bw-in-1")
    inbound["message"].update(
        {"direction": "in", "from": TO, "to": ["+15552221111"], "text": "STOP?"}
    )
    post_signed(client, bandwidth_inbox, [inbound])
    post_signed(client, bandwidth_inbox, [inbound])
    stored = Message.objects.get(inbox=bandwidth_inbox, direction="incoming")
    assert (stored.content, stored.conversation_id) == ("STOP?", earlier.conversation_id)


def test_sign_helper_matches_what_the_adapter_checks(bandwidth_inbox):
    from tests.providers.adapter_support import make_request

    signed = sign(bandwidth_inbox, b"[]")
    assert bandwidth.verify(
        make_request(signed.body, headers=signed.headers), bandwidth_inbox.config
    )
