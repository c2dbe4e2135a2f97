"""WhatsApp through 360dialog: Meta's webhook JSON, authenticated by ``X-Webhook-Token``."""

import json
from datetime import UTC, datetime

import pytest

from inbox.models import Message
from statuses import correlation
from statuses.machine import UNRECOGNIZED, Status
from statuses.models import StatusEvent
from statuses.providers import whatsapp_360dialog
from tests.providers.meta_payloads import wa_payload, wa_status, wa_text_message, wa_value
from tests.webhooks.conftest import (
    CONTACTS,
    assert_entry_skipped,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    post_raw,
    post_signed,
    record_send,
)

pytestmark = pytest.mark.django_db

# Our messages were created before the provider times these bodies carry: lifecycle timestamps
# never precede the creation (DESIGN §5.1).
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
TO = CONTACTS["whatsapp_360dialog"]


def statuses(*items):
    return wa_payload(wa_value(statuses=items))


def test_statuses_move_the_message(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="wamid.A", created_at=CREATED)
    assert (
        post_signed(client, inbox, statuses(wa_status("wamid.A", "sent", "1767225600"))).status_code
        == 200
    )
    message.refresh_from_db()
    assert message.status == Status.SENT
    post_signed(client, inbox, statuses(wa_status("wamid.A", "delivered", "1767225610")))
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.DELIVERED, "double")
    post_signed(client, inbox, statuses(wa_status("wamid.A", "read", "1767225620")))
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.READ, "blue")
    assert message.read_at.timestamp() == 1767225620


def test_failed_takes_the_error(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="wamid.E")
    error = {
        "code": 131026,
        "title": "Message undeliverable",
        "error_data": {"details": "Receiver is incapable of receiving this message"},
    }
    body = statuses(
        wa_status("wamid.E", "sent"), wa_status("wamid.E", "failed", "1767225605", errors=[error])
    )
    assert post_signed(client, inbox, body).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "131026")
    assert message.error_title == "Message undeliverable"
    assert message.error_detail == "Receiver is incapable of receiving this message"


def test_legacy_on_premise_shape_and_its_error_codes(
    client, whatsapp_360dialog_inbox, make_message
):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="gBGGEgZHMlEfAgkM1RBkhDRr7t8")
    body = {
        "statuses": [
            {
                "id": "gBGGEgZHMlEfAgkM1RBkhDRr7t8",
                "recipient_id": "16505076520",
                "status": "failed",
                "timestamp": "1767225600",
                "errors": [
                    {
                        "code": 470,
                        "title": "Message failed to send because more than 24 hours have passed",
                    }
                ],
            }
        ]
    }
    assert post_signed(client, inbox, body).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "470")
    assert whatsapp_360dialog.ERRORS["470"]


def test_duplicate_webhook_is_one_event(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="wamid.D")
    body = statuses(wa_status("wamid.D", "delivered"))
    post_signed(client, inbox, body)
    post_signed(client, inbox, body)
    event = StatusEvent.objects.get(inbox=inbox)
    assert event.duplicate_count == 1
    message.refresh_from_db()
    assert message.version == 2


def test_out_of_order_converges(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    a = make_message(inbox, to=TO, provider_message_id="wamid.O1", created_at=CREATED)
    b = make_message(inbox, to=TO, provider_message_id="wamid.O2", created_at=CREATED)
    seq = [("sent", "1767225600"), ("delivered", "1767225610"), ("read", "1767225620")]
    for value, ts in seq:
        post_signed(client, inbox, statuses(wa_status("wamid.O1", value, ts)))
    for value, ts in reversed(seq):
        post_signed(client, inbox, statuses(wa_status("wamid.O2", value, ts)))
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == b.status == Status.READ
    assert (a.sent_at, a.delivered_at, a.read_at) == (b.sent_at, b.delivered_at, b.read_at)


def test_parked_then_applied(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO)
    post_signed(client, inbox, statuses(wa_status("wamid.P", "delivered")))
    assert StatusEvent.objects.get(inbox=inbox).outcome == "parked"
    record_send(message, "wamid.P")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_correlation_in_biz_opaque_callback_data(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO)
    opaque = correlation.make(message.id, 1)
    post_signed(
        client, inbox, statuses(wa_status("wamid.L", "read", biz_opaque_callback_data=opaque))
    )
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.READ, "wamid.L")


def test_wrong_token_is_403(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="wamid.F")
    raw = json.dumps(statuses(wa_status("wamid.F", "read"))).encode()
    response = post_raw(client, inbox, raw, headers={"X-Webhook-Token": "wh-360-guess"})
    assert_refused_and_nothing_changed(response, inbox, [message])
    # a Meta signature is no substitute for the configured token
    response = post_raw(client, inbox, raw, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert_refused_and_nothing_changed(response, inbox, [message])


def test_missing_token_is_403(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="wamid.F")
    response = post_raw(client, inbox, json.dumps(statuses(wa_status("wamid.F", "read"))).encode())
    assert_refused_and_nothing_changed(response, inbox, [message])


@pytest.mark.parametrize(
    "raw",
    [b'{"entry": [ {', b'{"entry": {"id": 1}}', b"[1, 2]", b'{"statuses": {"status": "read"}}'],
)
def test_malformed_is_400_and_kept(client, whatsapp_360dialog_inbox, raw):
    assert_malformed_kept(
        post_signed(client, whatsapp_360dialog_inbox, raw), whatsapp_360dialog_inbox, raw
    )


def test_malformed_status_is_recorded_and_skipped(client, whatsapp_360dialog_inbox):
    raw = b'{"statuses": [{"status": "read"}]}'
    inbox = whatsapp_360dialog_inbox
    assert_entry_skipped(post_signed(client, inbox, raw), inbox, raw)


def test_unknown_status_is_an_event_that_changes_nothing(
    client, whatsapp_360dialog_inbox, make_message
):
    inbox = whatsapp_360dialog_inbox
    message = make_message(inbox, to=TO, provider_message_id="wamid.U")
    assert post_signed(client, inbox, statuses(wa_status("wamid.U", "deleted"))).status_code == 200
    event = StatusEvent.objects.get(inbox=inbox)
    assert (event.status, event.raw_status, event.message_id) == (
        UNRECOGNIZED,
        "deleted",
        message.id,
    )
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.QUEUED, 1)


def test_no_handshake_get_is_405(client, whatsapp_360dialog_inbox):
    response = client.get(
        whatsapp_360dialog_inbox.webhook_path,
        {"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"},
    )
    assert response.status_code == 405


def test_inbound_is_stored_once_in_the_contacts_conversation(
    client, whatsapp_360dialog_inbox, make_message
):
    inbox = whatsapp_360dialog_inbox
    earlier = make_message(inbox, to=TO, provider_message_id="wamid.OUT")
    body = wa_payload(
        wa_value(
            messages=[wa_text_message("wamid.IN1", "Hi!")],
            contacts=[{"profile": {"name": "Ada"}, "wa_id": "16505076520"}],
        )
    )
    post_signed(client, inbox, body)
    post_signed(client, inbox, body)
    inbound = Message.objects.get(inbox=inbox, direction="incoming")
    assert inbound.content == "Hi!"
    assert inbound.conversation_id == earlier.conversation_id
    assert inbound.conversation.contact.name == "Ada"
