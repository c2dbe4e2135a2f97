"""Consent and sending (DESIGN §14): refused before queueing, refused again by the worker when the
opt-out committed while the send was queued (nothing reaches the provider — a local fake of its
API records every request), and provider send errors that mean an opt-out (Twilio 21610,
WhatsApp 131050)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox import consent
from inbox import services as inbox_services
from inbox.exceptions import ContactOptedOut, ContactOptedOutMarketing
from inbox.models import ConsentEvent, Contact, Message
from statuses import errors, outbound, sending
from statuses.machine import Status
from statuses.models import SendTry, StatusEvent
from tests.fakes.recorder import Reply
from tests.webhooks.conftest import post_signed

SMS_TO = "+15558675310"
WA_TO = "+16505076520"
MARKETING = {"name": "spring_sale", "language": "en_US", "category": "MARKETING"}
UTILITY = {"name": "order_update", "language": "en_US", "category": "UTILITY"}


@pytest.fixture
def twilio_inbox(account, make_inbox, provider):
    return make_inbox(
        account,
        "twilio_sms",
        account_sid="AC" + "1" * 32,
        auth_token="twilio-token",
        from_number="+15017250604",
        api_base_url=provider.url,
    )


@pytest.fixture
def wa_inbox(account, make_inbox, provider):
    return make_inbox(account, "whatsapp_cloud", api_base_url=provider.url)


def create(inbox, to, content="Hello", **kwargs):
    message, _ = outbound.message_create_outgoing(
        account=inbox.account, inbox=inbox, to=to, content=content, **kwargs
    )
    return message


def send(message):
    outcome = sending.message_send(message_id=message.id, attempt=message.attempt)
    message.refresh_from_db()
    return outcome


def opted_out(inbox, address, **fields):
    contact = inbox_services.contact_get_or_create(inbox=inbox, address=address)
    return consent.contact_consent_set(contact=contact, actor="test", **fields)


def sms_keyword(client, inbox, text, sid):
    body = urlencode(
        {
            "AccountSid": inbox.config["account_sid"],
            "MessageSid": sid,
            "SmsStatus": "received",
            "From": SMS_TO,
            "To": inbox.config["from_number"],
            "Body": text,
            "NumMedia": "0",
        }
    )
    assert post_signed(client, inbox, body).status_code == 200


def send_tasks():
    return DBTaskResult.objects.filter(task_path="statuses.tasks.send_message")


# --- before queueing ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_sending_to_an_opted_out_contact_is_refused_and_nothing_is_queued(twilio_inbox):
    opted_out(twilio_inbox, SMS_TO, opted_out=True)
    with pytest.raises(ContactOptedOut) as refused:
        create(twilio_inbox, SMS_TO)
    assert refused.value.code == "contact_opted_out" and refused.value.http_status == 422
    assert "opted out through the API" in refused.value.message
    assert not Message.objects.exists()
    assert not send_tasks().exists()


@pytest.mark.django_db
def test_marketing_opt_out_refuses_marketing_templates_only(wa_inbox):
    opted_out(wa_inbox, WA_TO, marketing_opted_out=True)
    with pytest.raises(ContactOptedOutMarketing) as refused:
        create(wa_inbox, WA_TO, content="", template=MARKETING)
    assert refused.value.code == "contact_opted_out_marketing"
    assert not Message.objects.exists() and not send_tasks().exists()
    # A utility template still goes (and free text within the window would too).
    assert create(wa_inbox, WA_TO, content="", template=UTILITY).status == Status.QUEUED
    assert send_tasks().count() == 1


# --- the race: opted out while the send waited in the queue ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_opt_out_committed_while_queued_is_refused_by_the_worker(client, twilio_inbox, provider):
    message = create(twilio_inbox, SMS_TO)  # committed: queued, its send task enqueued
    assert send_tasks().filter(status="READY").count() == 1
    sms_keyword(client, twilio_inbox, "STOP", "SMstop")  # the STOP commits meanwhile

    assert send(message) == "skipped"

    assert provider.requests == []  # nothing reached Twilio
    assert (message.status, message.error_code) == (Status.FAILED, "contact_opted_out")
    assert message.error_title == "Contact opted out"
    assert "replying STOP" in message.error_detail
    assert not SendTry.objects.filter(message=message).exists()
    event = StatusEvent.objects.get(message=message)
    assert (event.status, event.error_code) == (Status.FAILED, "contact_opted_out")

    # Not resendable while opted out (and still nothing sent) ...
    with pytest.raises(ContactOptedOut):
        outbound.message_resend(message=Message.objects.get(id=message.id))
    assert provider.requests == []
    # ... and resendable once the contact opts back in.
    sms_keyword(client, twilio_inbox, "START", "SMstart")
    assert errors.resend_helps("twilio_sms", "contact_opted_out")
    message = outbound.message_resend(message=Message.objects.get(id=message.id))
    provider.queue(Reply(201, {"sid": "SM" + "a" * 32, "status": "queued"}))
    assert send(message) == "accepted"
    assert len(provider.requests) == 1 and message.status == Status.SENT


@pytest.mark.django_db(transaction=True)
def test_a_marketing_template_queued_before_131050_is_refused_by_the_worker(wa_inbox, provider):
    open_window(wa_inbox)
    marketing = create(wa_inbox, WA_TO, content="", template=MARKETING)
    text = create(wa_inbox, WA_TO, content="Your order shipped")
    opted_out(wa_inbox, WA_TO, marketing_opted_out=True)

    assert send(marketing) == "skipped"
    assert (marketing.status, marketing.error_code) == (
        Status.FAILED,
        "contact_opted_out_marketing",
    )
    assert provider.requests == []
    provider.queue(Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.T"}]}))
    assert send(text) == "accepted"
    assert len(provider.requests) == 1


def open_window(inbox):
    contact = inbox_services.contact_get_or_create(inbox=inbox, address=WA_TO)
    conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
    conversation.last_inbound_at = timezone.now() - timedelta(minutes=1)
    conversation.save(update_fields=["last_inbound_at"])


# --- provider send errors that mean an opt-out -------------------------------------------------


@pytest.mark.django_db
def test_twilio_21610_on_send_opts_the_contact_out(twilio_inbox, provider):
    message = create(twilio_inbox, SMS_TO)
    provider.queue(
        Reply(
            400,
            {
                "code": 21610,
                "message": "Attempt to send to unsubscribed recipient",
                "more_info": "https://www.twilio.com/docs/errors/21610",
                "status": 400,
            },
        )
    )
    assert send(message) == "rejected"
    assert (message.status, message.error_code) == (Status.FAILED, "21610")
    contact = Contact.objects.get(inbox=twilio_inbox, address=SMS_TO)
    assert contact.opted_out and contact.opt_out_source == "provider_error"
    event = ConsentEvent.objects.get(contact=contact)
    assert (event.kind, event.detail, event.message_id) == ("opt_out", "21610", message.id)
    # The next send is refused up front.
    with pytest.raises(ContactOptedOut, match="error 21610"):
        create(twilio_inbox, SMS_TO, content="Again")
    assert len(provider.requests) == 1


@pytest.mark.django_db
def test_whatsapp_131050_on_send_stops_marketing_only(wa_inbox, provider):
    message = create(wa_inbox, WA_TO, content="", template=MARKETING)
    provider.queue(
        Reply(
            400,
            {
                "error": {
                    "message": "(#131050) Unable to deliver the message.",
                    "type": "OAuthException",
                    "code": 131050,
                    "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
                }
            },
        )
    )
    assert send(message) == "rejected"
    contact = Contact.objects.get(inbox=wa_inbox, address=WA_TO)
    assert contact.marketing_opted_out and not contact.opted_out
    assert ConsentEvent.objects.get(contact=contact).scope == "marketing"
    with pytest.raises(ContactOptedOutMarketing):
        create(wa_inbox, WA_TO, content="", template=MARKETING)
    assert create(wa_inbox, WA_TO, content="", template=UTILITY).status == Status.QUEUED
