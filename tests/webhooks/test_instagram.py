"""Instagram: ``messaging_seen`` names the newest message read (``read.mid``) — a read watermark
bounded by that message, applied to every earlier outgoing message of the conversation."""

from datetime import UTC, datetime, timedelta

import pytest

from inbox.models import Message
from statuses.machine import Status
from statuses.models import StatusEvent
from tests.providers.meta_payloads import IG_ID, IGSID, fb_message, ig_seen, messaging_payload
from tests.webhooks.conftest import (
    assert_entry_skipped,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    forged,
    post_raw,
    post_signed,
    sign,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ig(*events):
    return messaging_payload(*events, obj="instagram", owner=IG_ID)


def thread(make_message, inbox, n=3, to=IGSID):
    return [
        make_message(
            inbox,
            to=to,
            provider_message_id=f"aWdf{to[-3:]}{i}",
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


def test_handshake(client, instagram_inbox):
    ok = client.get(
        instagram_inbox.webhook_path,
        {"hub.mode": "subscribe", "hub.verify_token": "ig-verify-1f7a", "hub.challenge": "ch"},
    )
    assert (ok.status_code, ok.content) == (200, b"ch")


def test_read_mid_marks_that_message_and_every_earlier_one(client, instagram_inbox, make_message):
    msgs = thread(make_message, instagram_inbox, n=3)
    other = thread(make_message, instagram_inbox, n=1, to="1092310252989999")
    assert (
        post_signed(client, instagram_inbox, ig(ig_seen(msgs[1].provider_message_id))).status_code
        == 200
    )
    assert statuses_of(msgs) == [Status.READ, Status.READ, Status.SENT]
    assert statuses_of(other) == [Status.SENT]


def test_read_wrapped_in_changes(client, instagram_inbox, make_message):
    msgs = thread(make_message, instagram_inbox, n=2)
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": IG_ID,
                "time": 1767225600123,
                "changes": [
                    {"field": "messaging_seen", "value": ig_seen(msgs[1].provider_message_id)}
                ],
            }
        ],
    }
    assert post_signed(client, instagram_inbox, body).status_code == 200
    assert statuses_of(msgs) == [Status.READ, Status.READ]


def test_duplicate_is_idempotent(client, instagram_inbox, make_message):
    msgs = thread(make_message, instagram_inbox, n=2)
    body = ig(ig_seen(msgs[1].provider_message_id))
    post_signed(client, instagram_inbox, body)
    post_signed(client, instagram_inbox, body)
    assert StatusEvent.objects.filter(inbox=instagram_inbox).count() == 2  # one per message
    assert [m.version for m in msgs if not m.refresh_from_db()] == [2, 2]


def test_read_of_an_unknown_mid_changes_nothing(client, instagram_inbox, make_message):
    msgs = thread(make_message, instagram_inbox, n=2)
    assert post_signed(client, instagram_inbox, ig(ig_seen("aWdfUNKNOWN"))).status_code == 200
    assert statuses_of(msgs) == [Status.SENT, Status.SENT]


def test_forged_and_missing_signatures_are_403(client, instagram_inbox, make_message):
    msgs = thread(make_message, instagram_inbox, n=1)
    signed = sign(instagram_inbox, ig(ig_seen(msgs[0].provider_message_id)))
    assert_refused_and_nothing_changed(
        post_raw(client, instagram_inbox, signed.body, headers=forged(signed)),
        instagram_inbox,
        msgs,
    )
    assert_refused_and_nothing_changed(
        post_raw(client, instagram_inbox, signed.body), instagram_inbox, msgs
    )


@pytest.mark.parametrize("raw", [b"{", b'{"object":"instagram","entry":{"id":"1"}}'])
def test_malformed_is_400_and_kept(client, instagram_inbox, raw):
    assert_malformed_kept(post_signed(client, instagram_inbox, raw), instagram_inbox, raw)


def test_malformed_event_is_recorded_and_skipped(client, instagram_inbox):
    raw = b'{"object":"instagram","entry":[{"id":"1","messaging":[{"read":{}}]}]}'
    assert_entry_skipped(post_signed(client, instagram_inbox, raw), instagram_inbox, raw)


def test_unknown_event_changes_nothing(client, instagram_inbox, make_message):
    msgs = thread(make_message, instagram_inbox, n=1)
    body = ig(
        {
            "sender": {"id": IGSID},
            "recipient": {"id": IG_ID},
            "timestamp": 1767225799340,
            "reaction": {"mid": msgs[0].provider_message_id, "action": "react", "reaction": "love"},
        }
    )
    assert post_signed(client, instagram_inbox, body).status_code == 200
    assert statuses_of(msgs) == [Status.SENT]
    assert not StatusEvent.objects.filter(inbox=instagram_inbox).exists()


def test_inbound_stored_once_in_the_conversation(client, instagram_inbox, make_message):
    (earlier,) = thread(make_message, instagram_inbox, n=1)
    event = fb_message("aWdfIN1", "Do you ship to Lyon?")
    event["sender"], event["recipient"] = {"id": IGSID}, {"id": IG_ID}
    post_signed(client, instagram_inbox, ig(event))
    post_signed(client, instagram_inbox, ig(event))
    inbound = Message.objects.get(inbox=instagram_inbox, direction="incoming")
    assert (inbound.content, inbound.conversation_id) == (
        "Do you ship to Lyon?",
        earlier.conversation_id,
    )
