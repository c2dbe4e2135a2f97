"""LINE and Telegram: no status webhooks (DESIGN §4) — only verification and inbound messages."""

import json

import pytest

from inbox.models import Message
from statuses.machine import Status
from statuses.models import StatusEvent, WebhookDelivery
from tests.webhooks.conftest import (
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
LINE_USER = CONTACTS["line"]
LINE_VECTOR_BODY = b'{"destination":"U00000000000000000000000000000000","events":[]}'
LINE_VECTOR_SIGNATURE = "8BnrnB9ZR2DkR6H65eHG/THnnFpB2PpL7rOGjiuchNA="


def line_message(message_id="468789577898262530", text="Hello", redelivery=False):
    return {
        "destination": "U00000000000000000000000000000000",
        "events": [
            {
                "type": "message",
                "mode": "active",
                "timestamp": 1767225600000,
                "webhookEventId": "01FZ74A0TDDPYRVKNK77XKC3ZR",
                "deliveryContext": {"isRedelivery": redelivery},
                "replyToken": "757913772c4646b784d4b7ce46d12671",
                "source": {"type": "user", "userId": LINE_USER},
                "message": {"id": message_id, "type": "text", "text": text},
            }
        ],
    }


def test_line_console_verify_with_empty_events_is_200(client, line_inbox):
    response = post_raw(
        client, line_inbox, LINE_VECTOR_BODY, headers={"X-Line-Signature": LINE_VECTOR_SIGNATURE}
    )
    assert response.status_code == 200
    assert WebhookDelivery.objects.get(inbox=line_inbox).verdict == "accepted"
    assert sign(line_inbox, LINE_VECTOR_BODY).headers["X-Line-Signature"] == LINE_VECTOR_SIGNATURE


def test_line_verify_with_a_wrong_secret_is_403(client, provider_inbox):
    inbox = provider_inbox("line", channel_secret="another-channel-secret")
    response = post_raw(
        client, inbox, LINE_VECTOR_BODY, headers={"X-Line-Signature": LINE_VECTOR_SIGNATURE}
    )
    assert_refused_and_nothing_changed(response, inbox)


def test_line_forged_and_missing_signatures_are_403(client, line_inbox):
    signed = sign(line_inbox, line_message())
    assert_refused_and_nothing_changed(
        post_raw(client, line_inbox, signed.body, headers=forged(signed)), line_inbox
    )
    assert_refused_and_nothing_changed(post_raw(client, line_inbox, signed.body), line_inbox)


@pytest.mark.parametrize("raw", [b"{", b'{"events": {}}'])
def test_line_malformed_is_400_and_kept(client, line_inbox, raw):
    assert_malformed_kept(post_signed(client, line_inbox, raw), line_inbox, raw)


@pytest.mark.parametrize("raw", [b'{"events": [1]}', b'{"events":[{"type":"message"}]}'])
def test_line_malformed_event_is_recorded_and_skipped(client, line_inbox, raw):
    assert_entry_skipped(post_signed(client, line_inbox, raw), line_inbox, raw)


def test_line_other_events_are_200_and_change_nothing(client, line_inbox, make_message):
    message = make_message(
        line_inbox, to=LINE_USER, provider_message_id="461230966842064897", status=Status.DELIVERED
    )
    body = {
        "destination": "U0",
        "events": [
            {
                "type": "unsend",
                "timestamp": 1767225600000,
                "source": {"type": "user", "userId": LINE_USER},
                "unsend": {"messageId": "461230966842064897"},
            }
        ],
    }
    assert post_signed(client, line_inbox, body).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.DELIVERED, 1)
    assert not StatusEvent.objects.exists()


def test_line_inbound_stored_once_even_when_redelivered(client, line_inbox, make_message):
    earlier = make_message(line_inbox, to=LINE_USER, provider_message_id="461230966842064897")
    post_signed(client, line_inbox, line_message())
    post_signed(client, line_inbox, line_message(redelivery=True))
    inbound = Message.objects.get(inbox=line_inbox, direction="incoming")
    assert (inbound.content, inbound.conversation_id) == ("Hello", earlier.conversation_id)


TG_CHAT = CONTACTS["telegram"]


def tg_update(update_id=10000, message_id=1365, text="Hi, where is my order?"):
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 1767225600,
            "chat": {"id": int(TG_CHAT), "type": "private", "first_name": "Ada"},
            "from": {
                "id": int(TG_CHAT),
                "is_bot": False,
                "first_name": "Ada",
                "last_name": "Lovelace",
            },
            "text": text,
        },
    }


def test_telegram_secret_token_and_inbound_stored_once(client, telegram_inbox, make_message):
    earlier = make_message(telegram_inbox, to=TG_CHAT, provider_message_id=f"{TG_CHAT}:1364")
    assert post_signed(client, telegram_inbox, tg_update()).status_code == 200
    assert post_signed(client, telegram_inbox, tg_update()).status_code == 200  # redelivered
    inbound = Message.objects.get(inbox=telegram_inbox, direction="incoming")
    assert (inbound.content, inbound.provider_message_id) == (
        "Hi, where is my order?",
        f"{TG_CHAT}:1365",
    )
    assert inbound.conversation_id == earlier.conversation_id
    assert inbound.conversation.contact.name == "Ada Lovelace"


def test_telegram_wrong_and_missing_secret_are_403(client, telegram_inbox):
    raw = json.dumps(tg_update()).encode()
    wrong = post_raw(
        client,
        telegram_inbox,
        raw,
        headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret_Token-0000000000"},
    )
    assert_refused_and_nothing_changed(wrong, telegram_inbox)
    # the bot token is not the secret token
    bot = post_raw(
        client,
        telegram_inbox,
        raw,
        headers={"X-Telegram-Bot-Api-Secret-Token": telegram_inbox.config["bot_token"]},
    )
    assert_refused_and_nothing_changed(bot, telegram_inbox)
    assert_refused_and_nothing_changed(post_raw(client, telegram_inbox, raw), telegram_inbox)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]"])
def test_telegram_malformed_is_400_and_kept(client, telegram_inbox, raw):
    assert_malformed_kept(post_signed(client, telegram_inbox, raw), telegram_inbox, raw)


def test_telegram_malformed_message_is_recorded_with_200(client, telegram_inbox):
    # Telegram holds back every later update while one is refused: record it and answer 200.
    raw = b'{"update_id":1,"message":{"text":"no chat"}}'
    assert_entry_skipped(post_signed(client, telegram_inbox, raw), telegram_inbox, raw)


def test_telegram_other_updates_are_200_and_change_nothing(client, telegram_inbox, make_message):
    message = make_message(
        telegram_inbox, to=TG_CHAT, provider_message_id=f"{TG_CHAT}:1", status=Status.SENT
    )
    body = {
        "update_id": 3,
        "my_chat_member": {"chat": {"id": int(TG_CHAT)}, "new_chat_member": {"status": "kicked"}},
    }
    assert post_signed(client, telegram_inbox, body).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.SENT, 1)
    assert not Message.objects.filter(direction="incoming").exists()


@pytest.mark.parametrize("channel_type", ["api", "web_widget"])
def test_channels_without_provider_webhooks_refuse_everything(
    client, provider_inbox, make_message, channel_type
):
    inbox = provider_inbox(channel_type)
    message = make_message(inbox, to=CONTACTS[channel_type], provider_message_id="x1")
    body = json.dumps({"message_id": "x1", "status": "read"}).encode()
    response = post_raw(client, inbox, body, headers={"X-Tickmark-Signature": "t=1,v1=00"})
    assert_refused_and_nothing_changed(response, inbox, [message])


def test_wrong_channel_type_in_the_url_is_404(client, line_inbox):
    response = client.post(
        f"/webhooks/telegram/{line_inbox.id}/", b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert (
        client.post(
            f"/webhooks/nope/{line_inbox.id}/", b"{}", content_type="application/json"
        ).status_code
        == 404
    )
