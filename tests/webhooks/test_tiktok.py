"""TikTok: ``im_mark_read_msg`` is a read watermark (ms); the signature's ``t`` must be fresh."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from inbox.models import Message
from statuses.machine import Status
from statuses.models import StatusEvent, WebhookDelivery
from tests.webhooks.conftest import (
    CONFIGS,
    CONTACTS,
    assert_entry_skipped,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    forged,
    post_raw,
    post_signed,
    sign,
)

pytestmark = pytest.mark.django_db
BUSINESS = CONFIGS["tiktok"]["business_id"]
CONTACT = CONTACTS["tiktok"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def envelope(event, content, create_time=1767225600):
    return {
        "client_key": "awtestclientkey",
        "event": event,
        "create_time": create_time,
        "user_openid": BUSINESS,
        "content": json.dumps(content),
    }


def read_event(last_read: datetime, contact=CONTACT):
    return envelope(
        "im_mark_read_msg",
        {
            "conversation_id": f"conv-{contact}",
            "from_user": {"id": contact},
            "to_user": {"id": BUSINESS},
            "read": {"last_read_timestamp": int(last_read.timestamp() * 1000)},
        },
    )


def thread(make_message, inbox, n=3, to=CONTACT):
    return [
        make_message(
            inbox,
            to=to,
            provider_message_id=f"tt-{to[-3:]}-{i}",
            created_at=T0 + timedelta(minutes=i),
            status=Status.SENT,
            sent_at=T0 + timedelta(minutes=i),
        )
        for i in range(n)
    ]


def statuses_of(messages):
    for m in messages:
        m.refresh_from_db()
    return [m.status for m in messages]


def test_read_watermark_marks_every_earlier_message(client, tiktok_inbox, make_message):
    msgs = thread(make_message, tiktok_inbox)
    other = thread(make_message, tiktok_inbox, n=1, to="7200000000000000999")
    response = post_signed(
        client, tiktok_inbox, read_event(msgs[1].created_at + timedelta(seconds=1))
    )
    assert response.status_code == 200
    assert statuses_of(msgs) == [Status.READ, Status.READ, Status.SENT]
    assert statuses_of(other) == [Status.SENT]


def test_stale_signature_timestamp_is_rejected(client, tiktok_inbox, make_message):
    msgs = thread(make_message, tiktok_inbox, n=1)
    body = read_event(msgs[0].created_at)
    stale = int(time.time()) - 10 * 60  # a replay of a captured request, 10 minutes later
    response = post_signed(client, tiktok_inbox, body, t=stale)
    assert_refused_and_nothing_changed(response, tiktok_inbox, msgs)
    future = int(time.time()) + 10 * 60
    assert_refused_and_nothing_changed(
        post_signed(client, tiktok_inbox, body, t=future), tiktok_inbox, msgs
    )
    # within the window (clock skew) it is fine
    assert post_signed(client, tiktok_inbox, body, t=int(time.time()) - 60).status_code == 200
    assert statuses_of(msgs) == [Status.READ]


def test_duplicate_read_is_idempotent(client, tiktok_inbox, make_message):
    msgs = thread(make_message, tiktok_inbox, n=2)
    body = read_event(msgs[1].created_at)
    post_signed(client, tiktok_inbox, body)
    post_signed(client, tiktok_inbox, body)  # TikTok signs each retry afresh
    assert StatusEvent.objects.filter(inbox=tiktok_inbox).count() == 2
    for m in msgs:
        m.refresh_from_db()
        assert (m.status, m.version) == (Status.READ, 2)


def test_older_watermark_after_a_newer_one_changes_nothing(client, tiktok_inbox, make_message):
    msgs = thread(make_message, tiktok_inbox, n=3)
    post_signed(client, tiktok_inbox, read_event(msgs[2].created_at))
    post_signed(client, tiktok_inbox, read_event(msgs[0].created_at))  # late, out of order
    assert statuses_of(msgs) == [Status.READ] * 3


def test_forged_and_missing_signatures_are_403(client, tiktok_inbox, make_message):
    msgs = thread(make_message, tiktok_inbox, n=1)
    signed = sign(tiktok_inbox, read_event(msgs[0].created_at))
    assert_refused_and_nothing_changed(
        post_raw(client, tiktok_inbox, signed.body, headers=forged(signed)), tiktok_inbox, msgs
    )
    assert_refused_and_nothing_changed(
        post_raw(client, tiktok_inbox, signed.body), tiktok_inbox, msgs
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"nope",
        b'{"content": "{}"}',
    ],
)
def test_malformed_is_400_and_kept(client, tiktok_inbox, raw):
    assert_malformed_kept(post_signed(client, tiktok_inbox, raw), tiktok_inbox, raw)


# Issue #9: a readable envelope with a bad event is recorded with 200 (TikTok retries 72 h).
@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(envelope("im_mark_read_msg", {"read": {}})).encode(),
        json.dumps({"event": "im_mark_read_msg", "content": "{"}).encode(),
    ],
)
def test_malformed_event_is_recorded_and_skipped(client, tiktok_inbox, raw):
    assert_entry_skipped(post_signed(client, tiktok_inbox, raw), tiktok_inbox, raw)


def test_unknown_event_is_200_and_changes_nothing(client, tiktok_inbox, make_message):
    msgs = thread(make_message, tiktok_inbox, n=1)
    assert (
        post_signed(client, tiktok_inbox, envelope("im_referral", {"ref": "ad-42"})).status_code
        == 200
    )
    assert statuses_of(msgs) == [Status.SENT]
    # Understood and ignored, and recorded as such (issue #9).
    delivery = WebhookDelivery.objects.get(inbox=tiktok_inbox)
    assert delivery.verdict == "ignored"
    assert [note["kind"] for note in delivery.notes] == ["ignored"]


def test_inbound_stored_once(client, tiktok_inbox, make_message):
    (earlier,) = thread(make_message, tiktok_inbox, n=1)
    body = envelope(
        "im_receive_msg",
        {
            "conversation_id": "c1",
            "message_id": "tt-in-1",
            "timestamp": 1767225700000,
            "type": "text",
            "text": {"body": "Size M?"},
            "from_user": {"id": CONTACT},
            "to_user": {"id": BUSINESS},
        },
    )
    post_signed(client, tiktok_inbox, body)
    post_signed(client, tiktok_inbox, body)
    inbound = Message.objects.get(inbox=tiktok_inbox, direction="incoming")
    assert (inbound.content, inbound.conversation_id) == ("Size M?", earlier.conversation_id)


@pytest.mark.parametrize("t", ["²", "٣", "999999999999", "-1", ""])
def test_odd_signature_timestamps_are_403_not_500(client, tiktok_inbox, t):
    # Found by the fuzz test: "²".isdigit() is True but int("²") raises, and a 12-digit t is
    # past year 9999 — both crashed verify() with a 500.
    body = json.dumps(read_event(T0)).encode()
    response = post_raw(
        client, tiktok_inbox, body, headers={"TikTok-Signature": f"t={t},s={'0' * 64}"}
    )
    assert_refused_and_nothing_changed(response, tiktok_inbox)
