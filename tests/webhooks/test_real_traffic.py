"""Issue #9, provider side: what real provider traffic demands (DESIGN §5.1).

Every test posts a correctly signed body to the inbox's real URL
(``/webhooks/<channel_type>/<inbox_id>/``). The bodies are written here from the providers'
documented shapes (reference §1, §3, §4, §5, §6, §7, §8, §9), one numbered point of the issue
per section:

2. a bad entry is recorded with its reason, the rest of the body applied, answered 200;
5. echoes are outgoing ``sent`` to the recipient, never expired by the sweep;
6. a contact's deletion marks the original deleted, whatever the order;
7. WhatsApp group messages are recorded and not stored;
8. every catalogue entry has a title, an explanation and a hint; the reference's codes exist;
9. senders that are not addresses are recorded and skipped; base64-relayed Twilio forms decoded;
10. postbacks, referrals, opt-ins, Viber consent events and WhatsApp ``errors[]`` are recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from inbox.models import ConsentEvent, Inbox, Membership, Message, ParkedDeletion
from statuses import providers, sweeps
from statuses.machine import Status
from statuses.models import WebhookDelivery
from tests.webhooks.conftest import post_raw, post_signed, sign, twilio_params

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SECONDS = str(int(T0.timestamp()))
MILLIS = int(T0.timestamp() * 1000)

# --------------------------------------------------------------------------------------------
# Bodies, written from the documented shapes

WA_CONFIG = {
    "phone_number_id": "109876543210987",
    "access_token": "EAAB-whatsapp-cloud-test-token",
    "app_secret": "0b7d3c1f9e2a4c6b8d0f1e3a5c7b9d2f",
    "verify_token": "wa-verify-5d1c",
}
BUSINESS_NUMBER = "4930901820"
CUSTOMER = "4915112345678"  # a wa_id: the E.164 digits
PAGE = "109988776655443"
PERSON = "7034512345678901"  # a page-scoped id
IG_ACCOUNT = "17841405555555555"
IG_PERSON = "1298765432109876"


@pytest.fixture
def wa_inbox(account):
    return Inbox.objects.create(
        account=account, name="WhatsApp", channel_type="whatsapp_cloud", config=WA_CONFIG
    )


def post_whatsapp(client, inbox: Inbox, body: dict):
    raw = json.dumps(body).encode()
    digest = hmac.new(inbox.config["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
    return post_raw(client, inbox, raw, headers={"X-Hub-Signature-256": f"sha256={digest}"})


def whatsapp_body(field: str = "messages", **value) -> dict:
    """Meta's envelope (reference §1.2): entry[].changes[].value."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": BUSINESS_NUMBER,
                                "phone_number_id": WA_CONFIG["phone_number_id"],
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def wa_text(wamid: str, text: str, sender: str = CUSTOMER, timestamp=SECONDS, **extra) -> dict:
    message = {"id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": text}}
    if sender is not None:
        message["from"] = sender
    return {**message, **extra}


def page_body(*events: dict, obj: str = "page", owner: str = PAGE) -> dict:
    """The Messenger platform envelope (reference §4.1 / §5)."""
    return {"object": obj, "entry": [{"id": owner, "time": MILLIS, "messaging": list(events)}]}


def incoming(mid: str, text: str = "", sender: str = PERSON, owner: str = PAGE, **message):
    body = {"mid": mid, **({"text": text} if text else {}), **message}
    return {
        "sender": {"id": sender},
        "recipient": {"id": owner},
        "timestamp": MILLIS,
        "message": body,
    }


def deletion(mid: str, sender: str = PERSON, owner: str = PAGE) -> dict:
    return {
        "sender": {"id": sender},
        "recipient": {"id": owner},
        "timestamp": MILLIS + 60_000,
        "message": {"mid": mid, "is_deleted": True},
    }


def last_delivery(inbox: Inbox) -> WebhookDelivery:
    return WebhookDelivery.objects.filter(inbox=inbox).latest("id")


def kinds(delivery: WebhookDelivery) -> list[str]:
    return [note["kind"] for note in delivery.notes]


def incoming_contents(inbox: Inbox) -> list[str]:
    return list(
        Message.objects.filter(inbox=inbox, direction="incoming")
        .order_by("created_at", "content")
        .values_list("content", flat=True)
    )


# --------------------------------------------------------------------------------------------
# 2. One bad entry never costs the body


def test_whatsapp_bad_messages_are_recorded_and_the_good_status_applied(
    client, wa_inbox, make_message
):
    sent = make_message(
        wa_inbox,
        to="+" + CUSTOMER,
        provider_message_id="wamid.OUT-1",
        status=Status.SENT,
        sent_at=T0 - timedelta(minutes=1),
        created_at=T0 - timedelta(minutes=2),
    )
    body = whatsapp_body(
        statuses=[
            {
                "id": "wamid.OUT-1",
                "status": "delivered",
                "timestamp": str(int(T0.timestamp()) + 5),
                "recipient_id": CUSTOMER,
            }
        ],
        contacts=[{"profile": {"name": "Lena"}, "wa_id": CUSTOMER}],
        messages=[
            wa_text("wamid.IN-BAD-TIME", "Hello World", timestamp="asdf"),
            wa_text("wamid.IN-NO-FROM", "who am I?", sender=None),
            wa_text("wamid.IN-OK", "still here"),
        ],
    )
    response = post_whatsapp(client, wa_inbox, body)

    assert response.status_code == 200, response.content
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED
    assert incoming_contents(wa_inbox) == ["still here"]
    delivery = last_delivery(wa_inbox)
    assert (delivery.verdict, delivery.http_status, delivery.status_count) == ("partial", 200, 2)
    bad_time, no_from = delivery.notes
    assert bad_time["kind"] == no_from["kind"] == "malformed"
    assert "timestamp" in bad_time["reason"] and bad_time["entry"]["id"] == "wamid.IN-BAD-TIME"
    assert "from" in no_from["reason"] and no_from["entry"]["id"] == "wamid.IN-NO-FROM"
    assert "malformed" in delivery.detail


def test_a_redelivered_partial_body_applies_nothing_twice(client, wa_inbox):
    body = whatsapp_body(
        messages=[wa_text("wamid.X", "bad", timestamp=[]), wa_text("wamid.Y", "ok")]
    )
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    assert incoming_contents(wa_inbox) == ["ok"]
    assert [kinds(d) for d in WebhookDelivery.objects.filter(inbox=wa_inbox)] == [
        ["malformed"],
        ["malformed"],
    ]


def test_a_not_a_number_timestamp_is_recorded_not_a_500(client, wa_inbox):
    # Python's JSON reads NaN and 1e999; no JSON column can store them as numbers.
    body = whatsapp_body(
        messages=[
            wa_text("wamid.NAN", "x", timestamp=float("nan")),
            wa_text("wamid.INF", "y", timestamp=float("inf")),
            wa_text("wamid.OK", "ok"),
        ]
    )
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    assert incoming_contents(wa_inbox) == ["ok"]
    delivery = last_delivery(wa_inbox)
    assert [n["entry"]["timestamp"] for n in delivery.notes] == ["nan", "inf"]


def test_an_unreadable_whatsapp_body_is_still_400(client, wa_inbox):
    response = post_whatsapp(client, wa_inbox, {"object": "whatsapp_business_account", "entry": 7})
    assert response.status_code == 400
    assert last_delivery(wa_inbox).verdict == "malformed"


def test_line_message_event_without_message_is_recorded(client, line_inbox):
    user = "U" + "4af4980629" * 3 + "ab"
    good = {
        "type": "message",
        "mode": "active",
        "timestamp": MILLIS,
        "source": {"type": "user", "userId": user},
        "webhookEventId": "01HQ0000000000000000000001",
        "deliveryContext": {"isRedelivery": False},
        "replyToken": "b60d432864f44d079f6d8efe86cf404b",
        "message": {"id": "468789577898262530", "type": "text", "text": "Hello from LINE"},
    }
    broken = {k: v for k, v in good.items() if k != "message"}
    broken["webhookEventId"] = "01HQ0000000000000000000002"
    response = post_signed(client, line_inbox, {"destination": "U0", "events": [broken, good]})

    assert response.status_code == 200
    assert incoming_contents(line_inbox) == ["Hello from LINE"]
    delivery = last_delivery(line_inbox)
    assert delivery.verdict == "partial" and kinds(delivery) == ["malformed"]
    assert "message" in delivery.notes[0]["reason"]
    assert delivery.notes[0]["entry"]["webhookEventId"] == "01HQ0000000000000000000002"


def test_messenger_bad_event_is_recorded_and_the_delivery_applied(
    client, facebook_inbox, make_message
):
    page = facebook_inbox.config["page_id"]
    sent = make_message(
        facebook_inbox, to=PERSON, provider_message_id="m_out_1", status=Status.SENT, sent_at=T0
    )
    delivered = {
        "sender": {"id": PERSON},
        "recipient": {"id": page},
        "timestamp": MILLIS + 2000,
        "delivery": {"mids": ["m_out_1"], "watermark": MILLIS + 1000},
    }
    bad = incoming("m_in_bad", "typo", owner=page)
    bad["timestamp"] = "asdf"
    response = post_signed(client, facebook_inbox, page_body(delivered, bad, owner=page))

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED
    assert incoming_contents(facebook_inbox) == []
    delivery = last_delivery(facebook_inbox)
    assert delivery.verdict == "partial" and kinds(delivery) == ["malformed"]
    assert "timestamp" in delivery.notes[0]["reason"]


def test_bandwidth_bad_event_is_recorded_and_the_rest_applied(
    client, bandwidth_inbox, make_message
):
    sent = make_message(
        bandwidth_inbox, to="+15554443333", provider_message_id="1661365814859loidf7mcwd4qacn7"
    )
    good = {
        "type": "message-delivered",
        "time": "2026-03-02T09:31:00.000Z",
        "description": "Message delivered to carrier.",
        "to": "+15554443333",
        "message": {
            "id": "1661365814859loidf7mcwd4qacn7",
            "owner": "+15552221111",
            "applicationId": "cfd4fb83-7531-4acc-b471-42d0bb76a65c",
            "time": "2026-03-02T09:30:59.000Z",
            "direction": "out",
            "to": ["+15554443333"],
            "from": "+15552221111",
            "text": "",
        },
    }
    bad = {"type": "message-failed", "time": "2026-03-02T09:31:00.000Z", "to": "+15554443333"}
    response = post_signed(client, bandwidth_inbox, [bad, good])

    assert response.status_code == 200
    sent.refresh_from_db()
    assert sent.status == Status.DELIVERED
    delivery = last_delivery(bandwidth_inbox)
    assert delivery.verdict == "partial" and kinds(delivery) == ["malformed"]
    assert "message" in delivery.notes[0]["reason"]


def test_skipped_entries_are_shown_in_the_admin(client, wa_inbox, admin_user):
    body = whatsapp_body(messages=[wa_text("wamid.IN-BAD", "Hello World", timestamp="asdf")])
    post_whatsapp(client, wa_inbox, body)
    client.force_login(admin_user)
    url = reverse("admin:statuses_webhookdelivery_change", args=[last_delivery(wa_inbox).pk])
    page = client.get(url).content.decode()
    assert "malformed" in page and "timestamp" in page and "wamid.IN-BAD" in page


# --------------------------------------------------------------------------------------------
# 5. Echoes


def test_messenger_echo_is_outgoing_sent_to_the_recipient_and_never_expires(
    client, facebook_inbox, make_message
):
    page = facebook_inbox.config["page_id"]
    long_ago = T0 - timedelta(days=40)
    echo = {
        "sender": {"id": page},
        "recipient": {"id": PERSON},
        "timestamp": int(long_ago.timestamp() * 1000),
        "message": {
            "mid": "m_echo_1",
            "is_echo": True,
            "app_id": 1517776481860111,
            "text": "Your table is booked for 8pm",
        },
    }
    assert post_signed(client, facebook_inbox, page_body(echo, owner=page)).status_code == 200

    stored = Message.objects.get(inbox=facebook_inbox, provider_message_id="m_echo_1")
    assert (stored.direction, stored.status, stored.origin) == ("outgoing", "sent", "external")
    assert stored.content == "Your table is booked for 8pm"
    assert stored.to_address == PERSON and stored.conversation.contact.address == PERSON
    assert not Message.objects.filter(inbox=facebook_inbox, to_address=page).exists()

    # A message Tickmark sent at the same time does expire: the sweep really ran over both.
    ours = make_message(
        facebook_inbox,
        to=PERSON,
        provider_message_id="m_ours",
        status=Status.SENT,
        queued_at=long_ago,
        created_at=long_ago,
    )
    assert sweeps.messages_expire(now=timezone.now()) >= 1
    ours.refresh_from_db()
    stored.refresh_from_db()
    assert ours.status == Status.EXPIRED
    assert stored.status == Status.SENT


def test_echo_of_our_own_send_before_its_answer_is_left_to_the_answer(
    client, facebook_inbox, make_message
):
    from tests.webhooks.conftest import record_send

    page = facebook_inbox.config["page_id"]
    ours = make_message(facebook_inbox, to=PERSON, content="On my way", status=Status.QUEUED)
    echo = {
        "sender": {"id": page},
        "recipient": {"id": PERSON},
        "timestamp": MILLIS,
        "message": {"mid": "m_ours_echo", "is_echo": True, "text": "On my way"},
    }
    assert post_signed(client, facebook_inbox, page_body(echo, owner=page)).status_code == 200
    assert list(Message.objects.filter(inbox=facebook_inbox)) == [ours]
    record_send(ours, "m_ours_echo")  # the send answer arrives: no clash with a stored echo
    ours.refresh_from_db()
    assert (ours.provider_message_id, ours.status) == ("m_ours_echo", Status.SENT)


def test_instagram_echo_keeps_its_attachment_summary(client, instagram_inbox):
    owner = instagram_inbox.config["ig_user_id"]
    echo = {
        "sender": {"id": owner},
        "recipient": {"id": IG_PERSON},
        "timestamp": MILLIS,
        "message": {
            "mid": "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1",
            "is_echo": True,
            "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/i.jpg"}}],
        },
    }
    body = page_body(echo, obj="instagram", owner=owner)
    assert post_signed(client, instagram_inbox, body).status_code == 200
    stored = Message.objects.get(inbox=instagram_inbox)
    assert (stored.direction, stored.status, stored.content) == ("outgoing", "sent", "[image]")
    assert stored.to_address == IG_PERSON


def test_whatsapp_business_app_echo_is_outgoing_to_the_customer(client, wa_inbox):
    body = whatsapp_body(
        field="smb_message_echoes",
        message_echoes=[
            {
                "from": BUSINESS_NUMBER,
                "to": CUSTOMER,
                "id": "wamid.ECHO-1",
                "timestamp": SECONDS,
                "type": "text",
                "text": {"body": "Sent from the phone"},
            }
        ],
    )
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    stored = Message.objects.get(inbox=wa_inbox)
    assert (stored.direction, stored.status, stored.origin) == ("outgoing", "sent", "external")
    assert (stored.to_address, stored.content) == ("+" + CUSTOMER, "Sent from the phone")


# --------------------------------------------------------------------------------------------
# 6. Deletions, in either order


@pytest.fixture
def agent_client(client, account):
    user = get_user_model().objects.create_user("agent-9", password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client.force_login(user)
    return client


@pytest.mark.parametrize("channel_type", ["facebook", "instagram"])
@pytest.mark.parametrize("deletion_first", [False, True], ids=["original-first", "deletion-first"])
def test_deletion_marks_the_original_whatever_the_order(
    client, provider_inbox, channel_type, deletion_first
):
    inbox = provider_inbox(channel_type)
    owner = inbox.config.get("page_id") or inbox.config["ig_user_id"]
    obj = "page" if channel_type == "facebook" else "instagram"
    original = page_body(incoming("mid.orig-1", "my card number is…", owner=owner), obj=obj)
    unsent = page_body(deletion("mid.orig-1", owner=owner), obj=obj, owner=owner)
    first, second = (unsent, original) if deletion_first else (original, unsent)

    assert post_signed(client, inbox, first).status_code == 200
    if deletion_first:
        assert not Message.objects.filter(inbox=inbox).exists()  # never a "[deleted]" message
        assert ParkedDeletion.objects.filter(inbox=inbox, provider_message_id="mid.orig-1").exists()
    assert post_signed(client, inbox, second).status_code == 200

    (message,) = Message.objects.filter(inbox=inbox)
    assert message.direction == "incoming" and message.provider_message_id == "mid.orig-1"
    assert message.deleted_at == T0 + timedelta(minutes=1)
    assert "[deleted]" not in message.content
    assert not ParkedDeletion.objects.filter(inbox=inbox).exists()


def test_a_deletion_by_someone_else_does_not_delete(client, facebook_inbox):
    page = facebook_inbox.config["page_id"]
    post_signed(client, facebook_inbox, page_body(incoming("mid.mine", "hi", owner=page)))
    other = deletion("mid.mine", sender="7000000000000001", owner=page)
    assert post_signed(client, facebook_inbox, page_body(other)).status_code == 200
    assert Message.objects.get(provider_message_id="mid.mine").deleted_at is None


def test_an_echo_of_the_business_deleting_is_recorded_not_stored(client, facebook_inbox):
    page = facebook_inbox.config["page_id"]
    echo = {
        "sender": {"id": page},
        "recipient": {"id": PERSON},
        "timestamp": MILLIS,
        "message": {"mid": "m_echo_gone", "is_echo": True, "is_deleted": True},
    }
    assert post_signed(client, facebook_inbox, page_body(echo, owner=page)).status_code == 200
    assert not Message.objects.filter(inbox=facebook_inbox).exists()
    assert kinds(last_delivery(facebook_inbox)) == ["ignored"]


def test_agent_view_says_the_message_was_deleted(client, facebook_inbox, agent_client):
    page = facebook_inbox.config["page_id"]
    post_signed(client, facebook_inbox, page_body(incoming("mid.secret", "my PIN is 4711")))
    post_signed(client, facebook_inbox, page_body(deletion("mid.secret", owner=page)))
    message = Message.objects.get(provider_message_id="mid.secret")
    page_html = agent_client.get(f"/conversations/{message.conversation_id}/").content.decode()
    assert "This message was deleted" in page_html
    assert "my PIN is 4711" not in page_html


def test_whatsapp_revoke_marks_the_original_deleted(client, wa_inbox):
    revoke = {
        "from": CUSTOMER,
        "id": "wamid.REVOKE-1",
        "timestamp": str(int(T0.timestamp()) + 60),
        "type": "revoke",
        "revoke": {"id": "wamid.ORIG-1"},
    }
    assert post_whatsapp(client, wa_inbox, whatsapp_body(messages=[revoke])).status_code == 200
    assert not Message.objects.filter(inbox=wa_inbox).exists()
    body = whatsapp_body(messages=[wa_text("wamid.ORIG-1", "oops, wrong chat")])
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    (message,) = Message.objects.filter(inbox=wa_inbox)
    assert message.provider_message_id == "wamid.ORIG-1" and message.deleted_at is not None


def test_line_unsend_marks_the_original_deleted(client, line_inbox):
    user = "U" + "0123456789abcdef" * 2
    source = {"type": "user", "userId": user}
    message = {
        "type": "message",
        "timestamp": MILLIS,
        "source": source,
        "message": {"id": "325708", "type": "text", "text": "hello"},
    }
    unsend = {
        "type": "unsend",
        "timestamp": MILLIS + 1000,
        "source": source,
        "unsend": {"messageId": "325708"},
    }
    post_signed(client, line_inbox, {"destination": "U0", "events": [message]})
    assert (
        post_signed(client, line_inbox, {"destination": "U0", "events": [unsend]}).status_code
        == 200
    )
    assert Message.objects.get(inbox=line_inbox).deleted_at is not None


# --------------------------------------------------------------------------------------------
# 7. WhatsApp groups


def test_whatsapp_group_message_is_recorded_and_not_stored(client, wa_inbox):
    group_message = wa_text("wamid.GROUP-1", "hi all", group_id="120363025246125486")
    body = whatsapp_body(messages=[group_message])
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    assert not Message.objects.filter(inbox=wa_inbox).exists()
    assert not wa_inbox.contacts.exists()
    delivery = last_delivery(wa_inbox)
    assert delivery.verdict == "ignored" and kinds(delivery) == ["ignored"]
    assert "group" in delivery.notes[0]["reason"]


# --------------------------------------------------------------------------------------------
# 8. The error catalogue

# Every code the reference lists, per provider module (provider_contracts.md §1.4, §3.4, §4.4,
# §6, §7, §8.3, §9, §11.2).
REFERENCE_CODES = {
    "whatsapp_cloud": (
        "131026 131047 131049 131050 131051 130472 131000 131048 131056 130429 131052 131053 "
        "131042 131031 132000 132001 132015 132016 133010 368"
    ),
    "whatsapp_360dialog": "131026 131047 131049 131050 131051 131000 131048 131056 130429",
    "twilio_sms": (
        "30003 30004 30005 30006 30007 30008 21610 30032 30034 63016 63014 63024 63032 63017 "
        "63049 63018"
    ),
    "facebook": "10/2018278 551 100/2018001 613 4 2 190",
    "instagram": "10/2018278 551 100/2018001 613 4 2 190",
    "line": "400 401 403 409 429 500",
    "telegram": "400:chat_not_found 403:bot_blocked 403:user_deactivated 403:cant_initiate 429",
    "bandwidth_sms": (
        "4301 4302 4303 4360 4403 4404 4405 4406 4410 4432 4470 4481 4482 4700 4720 4721 4750 "
        "4770 4795 9902"
    ),
    "viber": "1 2 3 4 5 6 7 8 9 10 11 12 13",
    "email": "5.1.1 5.1.2 5.1.10 5.2.1 4.2.2 5.2.2 5.2.3 5.4.4 4.4.7 5.7.1 5.7.26",
}


def test_every_catalogue_entry_has_title_explanation_and_hint():
    blanks = [
        (channel_type, code, name)
        for channel_type, module in providers.REGISTRY.items()
        for code, info in module.errors.items()
        for name in ("title", "explanation", "hint")
        if not str(getattr(info, name) or "").strip()
    ]
    assert blanks == []
    assert sum(len(m.errors) for m in providers.REGISTRY.values()) > 200


@pytest.mark.parametrize("channel_type", sorted(REFERENCE_CODES))
def test_every_code_the_reference_lists_is_in_the_catalogue(channel_type):
    catalogue = providers.get(channel_type).errors
    missing = [code for code in REFERENCE_CODES[channel_type].split() if code not in catalogue]
    assert missing == []


def test_twilio_63018_failure_gets_a_title_and_a_hint(client, twilio_whatsapp_inbox, make_message):
    inbox = twilio_whatsapp_inbox
    sid = "SM" + "3f" * 16
    message = make_message(inbox, to="+15558675310", provider_message_id=sid, status=Status.SENT)
    form = {
        "AccountSid": inbox.config["account_sid"],
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": "failed",
        "ErrorCode": "63018",
        "From": "whatsapp:+14155238886",
        "To": "whatsapp:+15558675310",
        "ApiVersion": "2010-04-01",
    }
    assert post_signed(client, inbox, urlencode(form)).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "63018")
    assert message.error_title == providers.get("twilio_whatsapp").errors["63018"].title != ""


# --------------------------------------------------------------------------------------------
# 9. Senders that are not addresses; what the provider (or its relay) encodes


def test_messenger_sender_that_is_not_a_page_scoped_id_is_skipped(client, facebook_inbox):
    page = facebook_inbox.config["page_id"]
    body = page_body(
        incoming("m_bad_sender", "spoofed", sender="abc5678", owner=page),
        incoming("m_good", "real person", owner=page),
        owner=page,
    )
    assert post_signed(client, facebook_inbox, body).status_code == 200
    assert incoming_contents(facebook_inbox) == ["real person"]
    delivery = last_delivery(facebook_inbox)
    assert delivery.verdict == "partial" and kinds(delivery) == ["invalid_sender"]
    assert "abc5678" in delivery.notes[0]["reason"]


def twilio_inbound(inbox: Inbox, sender: str, body: str = "Your code is 1234") -> dict:
    sid = "SM" + hashlib.sha1(sender.encode()).hexdigest()[:32]
    return {
        "ToCountry": "US",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": inbox.config["from_number"],
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": inbox.config["account_sid"],
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


@pytest.mark.parametrize("sender", ["MTN", "ACMEBANK", "72404", ""])
def test_sms_sender_that_is_not_e164_is_recorded_and_skipped(client, twilio_sms_inbox, sender):
    form = urlencode(twilio_inbound(twilio_sms_inbox, sender))
    assert post_signed(client, twilio_sms_inbox, form).status_code == 200
    assert not Message.objects.filter(inbox=twilio_sms_inbox).exists()
    delivery = last_delivery(twilio_sms_inbox)
    assert delivery.verdict == "partial" and kinds(delivery) == ["invalid_sender"]


def test_bandwidth_alphanumeric_sender_is_recorded_and_skipped(client, bandwidth_inbox):
    def received(mid: str, sender: str) -> dict:
        return {
            "type": "message-received",
            "time": "2026-03-02T09:30:00.000Z",
            "to": "+15552221111",
            "message": {
                "id": mid,
                "time": "2026-03-02T09:30:00.000Z",
                "to": ["+15552221111"],
                "from": sender,
                "text": f"from {sender}",
                "direction": "in",
            },
        }

    body = [received("bw-in-1", "MTN"), received("bw-in-2", "+15554443333")]
    assert post_signed(client, bandwidth_inbox, body).status_code == 200
    assert incoming_contents(bandwidth_inbox) == ["from +15554443333"]
    assert kinds(last_delivery(bandwidth_inbox)) == ["invalid_sender"]


def test_whatsapp_from_that_is_not_a_wa_id_is_skipped(client, wa_inbox):
    body = whatsapp_body(messages=[wa_text("wamid.A", "x", sender="abc"), wa_text("wamid.B", "ok")])
    assert post_whatsapp(client, wa_inbox, body).status_code == 200
    assert incoming_contents(wa_inbox) == ["ok"]
    assert kinds(last_delivery(wa_inbox)) == ["invalid_sender"]


def test_telegram_chat_id_that_is_not_an_integer_is_skipped(client, telegram_inbox):
    update = {
        "update_id": 10000,
        "message": {
            "message_id": 1365,
            "date": int(T0.timestamp()),
            "chat": {"id": "not-a-chat", "type": "private"},
            "from": {"id": 1111111, "is_bot": False, "first_name": "Jo"},
            "text": "hi",
        },
    }
    assert post_signed(client, telegram_inbox, update).status_code == 200
    assert not Message.objects.filter(inbox=telegram_inbox).exists()
    assert kinds(last_delivery(telegram_inbox)) == ["invalid_sender"]


def test_twilio_form_relayed_base64_encoded_is_decoded(client, twilio_sms_inbox):
    """A gateway in front of Tickmark may pass Twilio's form on base64-encoded; the signature
    is Twilio's, over the decoded params."""
    inbox = twilio_sms_inbox
    form = urlencode(twilio_inbound(inbox, "+15558675310", "Grüße aus Köln & mehr")).encode()
    signature = sign(inbox, form).headers  # Twilio signs the params it sent
    relayed = base64.b64encode(form)
    assert twilio_params(form)["Body"] == ["Grüße aus Köln & mehr"]
    response = post_raw(
        client,
        inbox,
        relayed,
        headers=signature,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    (message,) = Message.objects.filter(inbox=inbox)
    assert message.content == "Grüße aus Köln & mehr"
    assert message.conversation.contact.address == "+15558675310"


def test_a_base64_looking_text_message_is_not_decoded(client, twilio_sms_inbox):
    form = urlencode(twilio_inbound(twilio_sms_inbox, "+15558675310", "SGVsbG8="))
    assert post_signed(client, twilio_sms_inbox, form).status_code == 200
    assert incoming_contents(twilio_sms_inbox) == ["SGVsbG8="]


# --------------------------------------------------------------------------------------------
# 10. Events understood and ignored leave a trace


def test_messenger_postback_referral_and_optin_are_recorded_as_ignored(client, facebook_inbox):
    page = facebook_inbox.config["page_id"]
    who = {"sender": {"id": PERSON}, "recipient": {"id": page}, "timestamp": MILLIS}
    body = page_body(
        {**who, "postback": {"title": "Get Started", "payload": "GET_STARTED", "mid": "m_pb"}},
        {**who, "referral": {"ref": "spring-sale", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
        {**who, "optin": {"type": "notification_messages", "payload": "weekly"}},
        owner=page,
    )
    assert post_signed(client, facebook_inbox, body).status_code == 200
    assert not Message.objects.filter(inbox=facebook_inbox).exists()
    delivery = last_delivery(facebook_inbox)
    assert delivery.verdict == "ignored" and kinds(delivery) == ["ignored"] * 3
    reasons = " ".join(note["reason"] for note in delivery.notes)
    assert "postback" in reasons and "referral" in reasons and "optin" in reasons


@pytest.mark.parametrize(
    ("event", "verdict", "consent_kind"),
    [
        ("subscribed", "accepted", "opt_in"),
        ("unsubscribed", "accepted", "opt_out"),
        ("conversation_started", "ignored", None),
    ],
)
def test_viber_lifecycle_events_are_recorded(client, viber_inbox, event, verdict, consent_kind):
    body = {"event": event, "timestamp": MILLIS, "chat_hostname": "SN-CHAT-05_"}
    if event == "unsubscribed":
        body["user_id"] = "01234567890A="
    else:
        body["user"] = {"id": "01234567890A=", "name": "Jo", "language": "en", "country": "DE"}
    body["message_token"] = 5741311803571721087
    assert post_signed(client, viber_inbox, body).status_code == 200
    assert not Message.objects.filter(inbox=viber_inbox).exists()
    delivery = last_delivery(viber_inbox)
    assert delivery.verdict == verdict
    # (Un)subscribing is consent, applied (DESIGN §14); conversation_started changes nothing.
    events = ConsentEvent.objects.filter(contact__inbox=viber_inbox)
    assert [e.kind for e in events] == ([consent_kind] if consent_kind else [])
    if consent_kind is None:
        assert kinds(delivery) == ["ignored"] and event in delivery.notes[0]["reason"]


def test_whatsapp_system_errors_are_logged_and_visible_in_the_admin(
    client, wa_inbox, admin_user, caplog
):
    error = {
        "code": 130429,
        "title": "Rate limit hit",
        "message": "Rate limit hit",
        "error_data": {"details": "Cloud API message throughput has been reached."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }
    with caplog.at_level(logging.WARNING, logger="statuses.ingestion"):
        assert post_whatsapp(client, wa_inbox, whatsapp_body(errors=[error])).status_code == 200
    assert any("130429" in record.getMessage() for record in caplog.records)
    delivery = last_delivery(wa_inbox)
    assert delivery.verdict == "ignored"
    assert [(n["kind"], n["code"]) for n in delivery.notes] == [("provider_error", "130429")]
    client.force_login(admin_user)
    page = client.get(reverse("admin:statuses_webhookdelivery_change", args=[delivery.pk]))
    assert "130429" in page.content.decode() and "throughput" in page.content.decode()


def test_a_mail_that_is_not_a_bounce_is_recorded_as_ignored(client, email_inbox):
    mail = (
        b"From: Jo Example <jo@example.org>\r\n"
        b"To: support@acme.example\r\n"
        b"Subject: Opening hours?\r\n"
        b"Date: Mon, 02 Mar 2026 09:30:00 +0000\r\n"
        b"Message-ID: <question-1@example.org>\r\n"
        b"\r\n"
        b"Are you open on Sunday?\r\n"
    )
    assert post_signed(client, email_inbox, mail).status_code == 200
    delivery = last_delivery(email_inbox)
    assert delivery.verdict == "ignored" and kinds(delivery) == ["ignored"]
    assert "not a delivery report" in delivery.notes[0]["reason"]
