"""Consent triggers (DESIGN §14) through the real webhook endpoints, signed as each provider
signs: SMS keywords (Twilio SMS, Bandwidth), Twilio 21610 in a status callback, Viber
(un)subscribed, Telegram ``my_chat_member``, WhatsApp 131050 (marketing only). Every trigger is
recorded once however often the provider retries it."""

from urllib.parse import urlencode

import pytest

from inbox.models import ConsentEvent, Contact, Message
from statuses.machine import Status
from statuses.models import WebhookDelivery
from tests.providers.meta_payloads import wa_payload, wa_status, wa_value
from tests.webhooks.conftest import CONTACTS, post_signed

pytestmark = pytest.mark.django_db

SMS_TO = CONTACTS["twilio_sms"]
BW_TO = CONTACTS["bandwidth_sms"]


def twilio_inbound(inbox, text, sid="SMin1", sender=SMS_TO):
    return urlencode(
        {
            "AccountSid": inbox.config["account_sid"],
            "MessageSid": sid,
            "SmsStatus": "received",
            "From": sender,
            "To": "+15017250604",
            "Body": text,
            "NumMedia": "0",
        }
    )


def bandwidth_inbound(text, message_id="bw-in-1", time="2026-08-12T15:30:16Z"):
    return [
        {
            "type": "message-received",
            "time": time,
            "description": "Incoming message received",
            "to": "+15552221111",
            "message": {
                "id": message_id,
                "owner": "+15552221111",
                "applicationId": "cfd4fb83-7531-4acc-b471-42d0bb76a65c",
                "time": time,
                "segmentCount": 1,
                "direction": "in",
                "to": ["+15552221111"],
                "from": BW_TO,
                "text": text,
            },
        }
    ]


def contact(inbox, address):
    return Contact.objects.get(inbox=inbox, address=address)


def events(inbox):
    return list(ConsentEvent.objects.filter(contact__inbox=inbox).order_by("occurred_at", "id"))


# ---------------------------------------------------------------------------------------------
# SMS keywords


@pytest.mark.parametrize(
    "text", ["STOP", "  stop \n", "StopAll", "unsubscribe", "CANCEL", "end", "Quit"]
)
def test_twilio_sms_opt_out_keyword(client, twilio_sms_inbox, text):
    assert (
        post_signed(client, twilio_sms_inbox, twilio_inbound(twilio_sms_inbox, text)).status_code
        == 200
    )
    person = contact(twilio_sms_inbox, SMS_TO)
    assert person.opted_out and person.opt_out_source == "keyword"
    assert person.opted_out_at is not None
    (event,) = events(twilio_sms_inbox)
    inbound = Message.objects.get(inbox=twilio_sms_inbox, direction="incoming")
    assert (event.kind, event.scope, event.source) == ("opt_out", "all", "keyword")
    assert event.detail == text.strip().upper()
    # The keyword is also a message the agent sees, and the event points at it.
    assert event.message_id == inbound.id and inbound.content == text
    assert event.webhook_delivery_id == WebhookDelivery.objects.get(inbox=twilio_sms_inbox).id


def test_twilio_keyword_retried_is_one_event_and_start_opts_back_in(client, twilio_sms_inbox):
    stop = twilio_inbound(twilio_sms_inbox, "STOP", sid="SMstop")
    post_signed(client, twilio_sms_inbox, stop)
    post_signed(client, twilio_sms_inbox, stop)  # Twilio retries the same webhook
    assert len(events(twilio_sms_inbox)) == 1
    post_signed(client, twilio_sms_inbox, twilio_inbound(twilio_sms_inbox, "start", sid="SMstart"))
    person = contact(twilio_sms_inbox, SMS_TO)
    assert not person.opted_out and person.opted_out_at is None and person.opt_out_source == ""
    assert [(e.kind, e.detail) for e in events(twilio_sms_inbox)] == [
        ("opt_out", "STOP"),
        ("opt_in", "START"),
    ]


@pytest.mark.parametrize("text", ["stop please", "STOP!", "Don't stop", "", "YES I want it"])
def test_only_the_whole_text_is_a_keyword(client, twilio_sms_inbox, text):
    post_signed(client, twilio_sms_inbox, twilio_inbound(twilio_sms_inbox, text))
    assert not contact(twilio_sms_inbox, SMS_TO).opted_out
    assert not ConsentEvent.objects.exists()


def test_stop_on_whatsapp_via_twilio_is_just_a_message(client, twilio_whatsapp_inbox):
    body = twilio_inbound(twilio_whatsapp_inbox, "STOP", sender="whatsapp:" + SMS_TO)
    assert post_signed(client, twilio_whatsapp_inbox, body).status_code == 200
    assert Message.objects.filter(inbox=twilio_whatsapp_inbox, content="STOP").exists()
    assert not contact(twilio_whatsapp_inbox, SMS_TO).opted_out
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(("out_word", "in_word"), [("QUIT", "unstop"), ("stopall", "YES")])
def test_bandwidth_keywords(client, bandwidth_inbox, out_word, in_word):
    post_signed(
        client, bandwidth_inbox, bandwidth_inbound(out_word, "bw-1", "2026-08-12T15:30:16Z")
    )
    post_signed(
        client, bandwidth_inbox, bandwidth_inbound(out_word, "bw-1", "2026-08-12T15:30:16Z")
    )
    assert contact(bandwidth_inbox, BW_TO).opted_out
    assert len(events(bandwidth_inbox)) == 1
    post_signed(client, bandwidth_inbox, bandwidth_inbound(in_word, "bw-2", "2026-08-12T15:31:00Z"))
    assert not contact(bandwidth_inbox, BW_TO).opted_out
    assert [e.kind for e in events(bandwidth_inbox)] == ["opt_out", "opt_in"]


def test_a_late_older_keyword_is_kept_but_does_not_undo_a_newer_one(client, bandwidth_inbox):
    # START at 15:31 arrives first; the STOP sent at 15:30 arrives after it (provider retry).
    post_signed(client, bandwidth_inbox, bandwidth_inbound("START", "bw-2", "2026-08-12T15:31:00Z"))
    post_signed(client, bandwidth_inbox, bandwidth_inbound("STOP", "bw-1", "2026-08-12T15:30:00Z"))
    assert not contact(bandwidth_inbox, BW_TO).opted_out
    assert [e.kind for e in events(bandwidth_inbox)] == ["opt_out", "opt_in"]


# ---------------------------------------------------------------------------------------------
# Provider errors in status callbacks


def test_twilio_21610_status_callback_opts_the_contact_out(client, twilio_sms_inbox, make_message):
    message = make_message(twilio_sms_inbox, to=SMS_TO, provider_message_id="SMout1")
    body = urlencode(
        {
            "AccountSid": twilio_sms_inbox.config["account_sid"],
            "From": twilio_sms_inbox.config["from_number"],
            "MessageSid": "SMout1",
            "MessageStatus": "failed",
            "To": SMS_TO,
            "ErrorCode": "21610",
        }
    )
    assert post_signed(client, twilio_sms_inbox, body).status_code == 200
    assert post_signed(client, twilio_sms_inbox, body).status_code == 200  # retried
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "21610")
    person = contact(twilio_sms_inbox, SMS_TO)
    assert person.opted_out and person.opt_out_source == "provider_error"
    (event,) = events(twilio_sms_inbox)
    assert (event.source, event.detail, event.message_id) == ("provider_error", "21610", message.id)


def test_other_twilio_errors_do_not_opt_out(client, twilio_sms_inbox, make_message):
    make_message(twilio_sms_inbox, to=SMS_TO, provider_message_id="SMout2")
    body = urlencode(
        {
            "AccountSid": twilio_sms_inbox.config["account_sid"],
            "MessageSid": "SMout2",
            "MessageStatus": "undelivered",
            "To": SMS_TO,
            "ErrorCode": "30003",
        }
    )
    post_signed(client, twilio_sms_inbox, body)
    assert not contact(twilio_sms_inbox, SMS_TO).opted_out
    assert not ConsentEvent.objects.exists()


def test_whatsapp_131050_stops_marketing_only(client, whatsapp_360dialog_inbox, make_message):
    inbox = whatsapp_360dialog_inbox
    to = CONTACTS["whatsapp_360dialog"]
    message = make_message(inbox, to=to, provider_message_id="wamid.M")
    error = {
        "code": 131050,
        "title": "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
    }
    body = wa_payload(
        wa_value(statuses=[wa_status("wamid.M", "failed", "1767225605", errors=[error])])
    )
    assert post_signed(client, inbox, body).status_code == 200
    assert post_signed(client, inbox, body).status_code == 200
    message.refresh_from_db()
    assert message.error_code == "131050"
    person = contact(inbox, to)
    assert person.marketing_opted_out and person.marketing_opt_out_source == "provider_error"
    assert not person.opted_out
    (event,) = events(inbox)
    assert (event.kind, event.scope, event.detail) == ("opt_out", "marketing", "131050")


# ---------------------------------------------------------------------------------------------
# Provider events

VIBER_USER = CONTACTS["viber"]


def viber_event(event, token, timestamp=1767225600000):
    body = {
        "event": event,
        "timestamp": timestamp,
        "chat_hostname": "SN-CHAT-05_",
        "message_token": token,
    }
    if event == "unsubscribed":
        body["user_id"] = VIBER_USER
    else:
        body["user"] = {"id": VIBER_USER, "name": "Jo", "language": "en", "country": "DE"}
    return body


def test_viber_unsubscribed_and_subscribed(client, viber_inbox):
    unsubscribed = viber_event("unsubscribed", 5741311803571721087)
    assert post_signed(client, viber_inbox, unsubscribed).status_code == 200
    assert post_signed(client, viber_inbox, unsubscribed).status_code == 200
    person = contact(viber_inbox, VIBER_USER)
    assert person.opted_out and person.opt_out_source == "provider_event"
    assert [(e.kind, e.detail) for e in events(viber_inbox)] == [("opt_out", "unsubscribed")]
    post_signed(client, viber_inbox, viber_event("subscribed", 5741311803571721088, 1767225700000))
    assert not contact(viber_inbox, VIBER_USER).opted_out
    assert [e.kind for e in events(viber_inbox)] == ["opt_out", "opt_in"]


def test_viber_unsubscribed_without_a_user_is_recorded_as_malformed(client, viber_inbox):
    body = {"event": "unsubscribed", "timestamp": 1767225600000, "message_token": 1}
    assert post_signed(client, viber_inbox, body).status_code == 200
    assert WebhookDelivery.objects.get(inbox=viber_inbox).verdict == "partial"
    assert not ConsentEvent.objects.exists()


TG_CHAT = CONTACTS["telegram"]


def chat_member(update_id, status, date=1767225600):
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": {"id": int(TG_CHAT), "type": "private", "first_name": "Ada"},
            "from": {"id": int(TG_CHAT), "is_bot": False, "first_name": "Ada"},
            "date": date,
            "old_chat_member": {"user": {"id": 7000000001, "is_bot": True}, "status": "member"},
            "new_chat_member": {"user": {"id": 7000000001, "is_bot": True}, "status": status},
        },
    }


def test_telegram_blocked_then_restarted(client, telegram_inbox):
    assert post_signed(client, telegram_inbox, chat_member(900, "kicked")).status_code == 200
    assert post_signed(client, telegram_inbox, chat_member(900, "kicked")).status_code == 200
    person = contact(telegram_inbox, TG_CHAT)
    assert person.opted_out and person.opt_out_source == "provider_event"
    assert [e.detail for e in events(telegram_inbox)] == ["my_chat_member kicked"]
    post_signed(client, telegram_inbox, chat_member(901, "member", 1767225700))
    assert not contact(telegram_inbox, TG_CHAT).opted_out
    assert [e.kind for e in events(telegram_inbox)] == ["opt_out", "opt_in"]


def test_telegram_other_member_statuses_change_nothing(client, telegram_inbox):
    assert post_signed(client, telegram_inbox, chat_member(902, "administrator")).status_code == 200
    assert not ConsentEvent.objects.exists()
    assert WebhookDelivery.objects.get(inbox=telegram_inbox).verdict == "ignored"
