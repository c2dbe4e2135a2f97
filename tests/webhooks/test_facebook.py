"""Facebook Messenger: delivery and read watermarks (Unix MILLISECONDS) through the endpoint,
applied to every earlier outgoing message of the conversation in constant statements."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox.models import Message
from statuses.machine import Status
from statuses.models import StatusEvent
from tests.providers.meta_payloads import (
    PAGE_ID,
    PSID,
    fb_delivery,
    fb_message,
    fb_read,
    messaging_payload,
)
from tests.webhooks.conftest import (
    assert_entry_skipped,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    forged,
    post_raw,
    post_signed,
    record_send,
    sign,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # 1767225600 s


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def conversation(make_message, inbox, n=3, start=T0, step=timedelta(seconds=10), to=PSID, **fields):
    return [
        make_message(
            inbox,
            to=to,
            provider_message_id=f"m_{to[-4:]}_{start.timestamp():.0f}_{i}",
            created_at=start + i * step,
            status=Status.SENT,
            sent_at=start + i * step,
            **fields,
        )
        for i in range(n)
    ]


def statuses_of(messages):
    for m in messages:
        m.refresh_from_db()
    return [m.status for m in messages]


def test_handshake(client, facebook_inbox):
    ok = client.get(
        facebook_inbox.webhook_path,
        {"hub.mode": "subscribe", "hub.verify_token": "fb-verify-8c2e", "hub.challenge": "42"},
    )
    assert (ok.status_code, ok.content) == (200, b"42")
    assert (
        client.get(
            facebook_inbox.webhook_path,
            {"hub.mode": "subscribe", "hub.verify_token": "no", "hub.challenge": "1"},
        ).status_code
        == 403
    )


def test_delivery_watermark_in_milliseconds_covers_every_earlier_message(
    client, facebook_inbox, make_message
):
    msgs = conversation(make_message, facebook_inbox, n=4)  # at T0, +10 s, +20 s, +30 s
    other_contact = conversation(make_message, facebook_inbox, n=1, to="6499999999999999")
    # The watermark is 1 ms after the third message: if it were read as seconds it would be
    # in the year 57,000 and cover everything; read as ms it covers exactly three.
    watermark = ms(msgs[2].created_at) + 1
    assert (
        post_signed(client, facebook_inbox, messaging_payload(fb_delivery(watermark))).status_code
        == 200
    )
    assert statuses_of(msgs) == [Status.DELIVERED] * 3 + [Status.SENT]
    assert statuses_of(other_contact) == [Status.SENT]
    events = StatusEvent.objects.filter(inbox=facebook_inbox)
    assert events.count() == 3
    assert {e.dedupe_key.rsplit("|", 1)[0] for e in events} == {
        f"{PAGE_ID}:{PSID}:delivery:{watermark}"
    }


def test_read_watermark_marks_earlier_messages_read_and_leaves_later_ones(
    client, facebook_inbox, make_message
):
    msgs = conversation(make_message, facebook_inbox, n=3)
    read = fb_read(watermark=ms(msgs[1].created_at), timestamp=ms(msgs[2].created_at) + 5000)
    assert post_signed(client, facebook_inbox, messaging_payload(read)).status_code == 200
    assert statuses_of(msgs) == [Status.READ, Status.READ, Status.SENT]
    msgs[0].refresh_from_db()
    assert msgs[0].read_at == msgs[2].created_at + timedelta(seconds=5)  # the event's own time


def test_delivery_mids_are_statuses_of_those_messages(client, facebook_inbox, make_message):
    (msg,) = conversation(make_message, facebook_inbox, n=1)
    body = messaging_payload(fb_delivery(watermark=ms(T0) - 60_000, mids=[msg.provider_message_id]))
    post_signed(client, facebook_inbox, body)
    msg.refresh_from_db()
    assert msg.status == Status.DELIVERED


def test_duplicate_webhook_is_stored_once(client, facebook_inbox, make_message):
    msgs = conversation(make_message, facebook_inbox, n=2)
    # a delivery with mids: the per-mid statuses are deduplicated like any status
    body = messaging_payload(
        fb_delivery(watermark=ms(msgs[-1].created_at), mids=[msgs[-1].provider_message_id])
    )
    post_signed(client, facebook_inbox, body)
    post_signed(client, facebook_inbox, body)
    mid_event = StatusEvent.objects.get(
        inbox=facebook_inbox, dedupe_key=f"{msgs[-1].provider_message_id}:delivery"
    )
    assert mid_event.duplicate_count == 1
    # the watermark covers the earlier message (the later one has its mid status already); the
    # redelivery finds both delivered (no longer eligible), so it adds no event, changes nothing
    watermark_events = StatusEvent.objects.filter(
        inbox=facebook_inbox, dedupe_key__contains=":delivery:"
    )
    assert [e.message_id for e in watermark_events] == [msgs[0].id]
    assert StatusEvent.objects.filter(inbox=facebook_inbox).count() == 2
    assert statuses_of(msgs) == [Status.DELIVERED, Status.DELIVERED]
    assert [m.version for m in msgs] == [2, 2]
    read = messaging_payload(fb_read(watermark=ms(msgs[-1].created_at)))
    post_signed(client, facebook_inbox, read)
    post_signed(client, facebook_inbox, read)
    assert StatusEvent.objects.filter(inbox=facebook_inbox, status="read").count() == 2
    assert statuses_of(msgs) == [Status.READ, Status.READ]
    assert [m.version for m in msgs] == [3, 3]


def test_read_before_delivery_converges_on_read(client, facebook_inbox, make_message):
    msgs = conversation(make_message, facebook_inbox, n=2)
    wm = ms(msgs[-1].created_at)
    post_signed(client, facebook_inbox, messaging_payload(fb_read(watermark=wm)))
    post_signed(client, facebook_inbox, messaging_payload(fb_delivery(watermark=wm)))
    assert statuses_of(msgs) == [Status.READ, Status.READ]


def test_parked_delivery_mid_then_applied(client, facebook_inbox, make_message):
    message = make_message(facebook_inbox, to=PSID, created_at=T0)
    body = messaging_payload(fb_delivery(watermark=ms(T0) - 60_000, mids=["m_Parked1"]))
    assert post_signed(client, facebook_inbox, body).status_code == 200
    assert StatusEvent.objects.get(inbox=facebook_inbox).outcome == "parked"
    record_send(message, "m_Parked1")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_forged_and_missing_signatures_are_403(client, facebook_inbox, make_message):
    msgs = conversation(make_message, facebook_inbox, n=1)
    signed = sign(facebook_inbox, messaging_payload(fb_read(watermark=ms(T0) + 1)))
    assert_refused_and_nothing_changed(
        post_raw(client, facebook_inbox, signed.body, headers=forged(signed)), facebook_inbox, msgs
    )
    assert_refused_and_nothing_changed(
        post_raw(client, facebook_inbox, signed.body), facebook_inbox, msgs
    )
    # signed with another app's secret (e.g. the Instagram app's)
    other = "sha256=" + hmac.new(b"another-apps-secret", signed.body, hashlib.sha256).hexdigest()
    response = post_raw(client, facebook_inbox, signed.body, headers={"X-Hub-Signature-256": other})
    assert_refused_and_nothing_changed(response, facebook_inbox, msgs)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"object":"page","entry":{"id":"1"}}',
    ],
)
def test_malformed_is_400_and_kept(client, facebook_inbox, raw):
    assert_malformed_kept(post_signed(client, facebook_inbox, raw), facebook_inbox, raw)


# Issue #9: a bad event of a readable body is recorded and skipped with 200, not a 400.
@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(messaging_payload({"sender": {"id": PSID}, "read": {}})).encode(),
        json.dumps(messaging_payload(fb_delivery(watermark="soon"))).encode(),
    ],
)
def test_malformed_event_is_recorded_and_skipped(client, facebook_inbox, raw):
    assert_entry_skipped(post_signed(client, facebook_inbox, raw), facebook_inbox, raw)


def test_unknown_event_is_200_and_changes_nothing(client, facebook_inbox, make_message):
    msgs = conversation(make_message, facebook_inbox, n=1)
    body = messaging_payload(
        {
            "sender": {"id": PSID},
            "recipient": {"id": PAGE_ID},
            "timestamp": ms(T0),
            "reaction": {"mid": msgs[0].provider_message_id, "action": "react", "emoji": "👍"},
        }
    )
    assert post_signed(client, facebook_inbox, body).status_code == 200
    assert statuses_of(msgs) == [Status.SENT]
    assert not StatusEvent.objects.filter(inbox=facebook_inbox).exists()


def test_inbound_and_echo_stored_once_in_the_conversation(client, facebook_inbox, make_message):
    (earlier,) = conversation(make_message, facebook_inbox, n=1)
    body = messaging_payload(
        fb_message("m_in1", "Where is my parcel?"),
        fb_message("m_echo1", "Sent from the Page inbox", echo=True),
    )
    post_signed(client, facebook_inbox, body)
    post_signed(client, facebook_inbox, body)
    incoming = Message.objects.get(inbox=facebook_inbox, direction="incoming")
    assert (incoming.content, incoming.conversation_id) == (
        "Where is my parcel?",
        earlier.conversation_id,
    )
    echo = Message.objects.get(inbox=facebook_inbox, provider_message_id="m_echo1")
    assert (echo.direction, echo.status, echo.conversation_id) == (
        "outgoing",
        Status.SENT,
        earlier.conversation_id,
    )


@pytest.mark.requires_postgres(
    "the constant statement count comes from PostgreSQL's one-statement UPDATE … FROM unnest(); SQLite (embedded mode) writes changed messages row by row"
)
def test_watermark_over_1000_messages_runs_as_many_statements_as_over_3(
    client, facebook_inbox, make_message
):
    from inbox import services as inbox_services

    def run(n, psid, start):
        contact = inbox_services.contact_get_or_create(inbox=facebook_inbox, address=psid)
        conv = inbox_services.conversation_get_or_create(inbox=facebook_inbox, contact=contact)
        Message.objects.bulk_create(
            Message(
                account_id=facebook_inbox.account_id,
                inbox=facebook_inbox,
                conversation=conv,
                channel_type="facebook",
                direction="outgoing",
                to_address=psid,
                content=f"#{i}",
                provider_message_id=f"m_{psid}_{i}",
                status=Status.SENT,
                sent_at=start + timedelta(seconds=i),
                created_at=start + timedelta(seconds=i),
                updated_at=start,
                queued_at=start,
                status_updated_at=start,
            )
            for i in range(n)
        )
        body = messaging_payload(
            {
                "sender": {"id": psid},
                "recipient": {"id": PAGE_ID},
                "timestamp": ms(start) + n * 1000 + 5,
                "read": {"watermark": ms(start) + n * 1000},
            }
        )
        with CaptureQueriesContext(connection) as queries:
            assert post_signed(client, facebook_inbox, body).status_code == 200
        assert Message.objects.filter(to_address=psid, status=Status.READ).count() == n
        return len(queries)

    run(1, "6400000000000001", T0 - timedelta(days=1))  # the inbox is kept from here on
    small = run(3, "6400000000000003", T0)
    large = run(1000, "6400000000001000", T0 + timedelta(days=1))
    assert large == small, f"{small} statements for 3 messages, {large} for 1,000"
    print(f"\nMessenger read watermark: {small} statements over 3 messages, {large} over 1,000")
