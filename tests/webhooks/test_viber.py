"""Viber: delivered / seen (a read watermark too) / failed, each naming a 64-bit message_token
that must stay exact (it is larger than 2**53: a float would merge neighbouring tokens)."""

import json
from datetime import UTC, datetime

import pytest

from inbox.models import Message
from statuses.machine import UNRECOGNIZED, Status
from statuses.models import StatusEvent, WebhookDelivery
from tests.webhooks.conftest import (
    CONTACTS,
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

# Our messages were created before the provider times these bodies carry: lifecycle timestamps
# never precede the creation (DESIGN §5.1).
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
USER = CONTACTS["viber"]
TOKEN = 4912661846655238145  # > 2**53
NEIGHBOUR = TOKEN - 1  # float(TOKEN) == float(NEIGHBOUR)
VECTOR_BODY = b'{"event":"delivered","timestamp":1457764197627,"message_token":4912661846655238145,"user_id":"01234567890A="}'
VECTOR_SIGNATURE = "f00998ed8263af7e1e4a0a7974e1eb44e750f75ea098418ee1d93e64d98946d8"


def callback(event, token=TOKEN, timestamp=1767225600000, **extra):
    # Written as text, as Viber writes it: the token is a bare 64-bit JSON number.
    fields = json.dumps({"event": event, "timestamp": timestamp, "user_id": USER, **extra})
    return (fields[:-1] + f', "message_token": {token}}}').encode()


def test_reference_vector_is_accepted_and_applied(client, viber_inbox, make_message):
    assert float(TOKEN) == float(NEIGHBOUR)
    message = make_message(viber_inbox, to=USER, provider_message_id=str(TOKEN))
    neighbour = make_message(viber_inbox, to=USER, provider_message_id=str(NEIGHBOUR))
    response = post_raw(
        client, viber_inbox, VECTOR_BODY, headers={"X-Viber-Content-Signature": VECTOR_SIGNATURE}
    )
    assert response.status_code == 200
    message.refresh_from_db()
    neighbour.refresh_from_db()
    assert (message.status, neighbour.status) == (Status.DELIVERED, Status.QUEUED)
    assert StatusEvent.objects.get(inbox=viber_inbox).provider_message_id == "4912661846655238145"


def test_delivered_then_seen_is_read_and_a_watermark(client, viber_inbox, make_message):
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    earlier = make_message(
        viber_inbox,
        to=USER,
        provider_message_id=str(NEIGHBOUR - 10),
        status=Status.SENT,
        sent_at=t0,
        created_at=t0,
    )
    message = make_message(
        viber_inbox,
        to=USER,
        provider_message_id=str(TOKEN),
        status=Status.SENT,
        sent_at=t0 + timedelta(seconds=5),
        created_at=t0 + timedelta(seconds=5),
    )
    later = make_message(
        viber_inbox,
        to=USER,
        provider_message_id=str(TOKEN + 10),
        status=Status.SENT,
        sent_at=t0 + timedelta(hours=1),
        created_at=t0 + timedelta(hours=1),
    )
    post_signed(client, viber_inbox, callback("delivered", timestamp=1767225606000))
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    post_signed(client, viber_inbox, callback("seen", timestamp=1767225610000))
    for m in (earlier, message, later):
        m.refresh_from_db()
    assert (earlier.status, message.status, later.status) == (Status.READ, Status.READ, Status.SENT)


def test_failed_keeps_the_description(client, viber_inbox, make_message):
    message = make_message(viber_inbox, to=USER, provider_message_id=str(TOKEN))
    assert (
        post_signed(
            client, viber_inbox, callback("failed", desc="failed to deliver message")
        ).status_code
        == 200
    )
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "delivery_failed")
    assert message.error_title == "Viber could not deliver the message"
    assert message.error_detail == "failed to deliver message"


def test_duplicate_is_one_event(client, viber_inbox, make_message):
    make_message(viber_inbox, to=USER, provider_message_id=str(TOKEN))
    post_signed(client, viber_inbox, callback("delivered"))
    post_signed(client, viber_inbox, callback("delivered"))
    assert StatusEvent.objects.get(inbox=viber_inbox).duplicate_count == 1


def test_seen_before_delivered_converges_on_read(client, viber_inbox, make_message):
    message = make_message(viber_inbox, to=USER, provider_message_id=str(TOKEN), created_at=CREATED)
    post_signed(client, viber_inbox, callback("seen", timestamp=1767225610000))
    post_signed(client, viber_inbox, callback("delivered", timestamp=1767225606000))
    message.refresh_from_db()
    assert message.status == Status.READ
    assert message.delivered_at.timestamp() == 1767225606


def test_parked_then_applied_with_the_exact_token(client, viber_inbox, make_message):
    message = make_message(viber_inbox, to=USER)
    post_signed(client, viber_inbox, callback("delivered"))
    event = StatusEvent.objects.get(inbox=viber_inbox)
    assert (event.outcome, event.provider_message_id) == ("parked", str(TOKEN))
    record_send(message, str(NEIGHBOUR))  # another message's token must not pick it up
    message.refresh_from_db()
    assert message.status == Status.SENT
    other = make_message(viber_inbox, to=USER)
    record_send(other, str(TOKEN))
    other.refresh_from_db()
    assert other.status == Status.DELIVERED


def test_forged_and_missing_signatures_are_403(client, viber_inbox, make_message):
    message = make_message(viber_inbox, to=USER, provider_message_id=str(TOKEN))
    signed = sign(viber_inbox, callback("seen"))
    assert_refused_and_nothing_changed(
        post_raw(client, viber_inbox, signed.body, headers=forged(signed)), viber_inbox, [message]
    )
    assert_refused_and_nothing_changed(
        post_raw(client, viber_inbox, signed.body), viber_inbox, [message]
    )


@pytest.mark.parametrize("raw", [b"{", b"[]", b'{"event": ""}'])
def test_malformed_is_400_and_kept(client, viber_inbox, raw):
    assert_malformed_kept(post_signed(client, viber_inbox, raw), viber_inbox, raw)


def test_malformed_callback_is_recorded_and_skipped(client, viber_inbox):
    raw = b'{"event": "delivered", "message_token": 1.5e18}'
    assert_entry_skipped(post_signed(client, viber_inbox, raw), viber_inbox, raw)


def test_unknown_event_is_an_event_that_changes_nothing(client, viber_inbox, make_message):
    message = make_message(viber_inbox, to=USER, provider_message_id=str(TOKEN))
    assert post_signed(client, viber_inbox, callback("reacted")).status_code == 200
    event = StatusEvent.objects.get(inbox=viber_inbox)
    assert (event.status, event.raw_status, event.message_id) == (
        UNRECOGNIZED,
        "reacted",
        message.id,
    )
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.QUEUED, 1)


def test_set_webhook_callback_is_200(client, viber_inbox):
    body = b'{"event":"webhook","timestamp":1767225600000,"chat_hostname":"SN-CHAT-05_","message_token":5741311803571721087}'
    assert post_signed(client, viber_inbox, body).status_code == 200
    assert WebhookDelivery.objects.get(inbox=viber_inbox).verdict == "accepted"
    assert not StatusEvent.objects.exists()


def test_inbound_stored_once_in_the_conversation(client, viber_inbox, make_message):
    earlier = make_message(viber_inbox, to=USER, provider_message_id="1")
    body = json.dumps(
        {
            "event": "message",
            "timestamp": 1767225600000,
            "sender": {"id": USER, "name": "Ada"},
            "message": {"type": "text", "text": "Privet"},
        }
    )
    body = (body[:-1] + ', "message_token": 5741311803571721088}').encode()
    post_signed(client, viber_inbox, body)
    post_signed(client, viber_inbox, body)
    inbound = Message.objects.get(inbox=viber_inbox, direction="incoming")
    assert (inbound.content, inbound.provider_message_id) == ("Privet", "5741311803571721088")
    assert inbound.conversation_id == earlier.conversation_id
