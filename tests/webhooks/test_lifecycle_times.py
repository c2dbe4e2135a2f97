"""Monotonic lifecycle timestamps through the real webhook endpoints (DESIGN §5.1, issue #9
item 4): ``created_at ≤ sent_at ≤ delivered_at ≤ read_at``, each the later of the provider's
time and the previous stage's; a provider time more than 5 minutes ahead is the time received.
The events keep the provider's raw time. Bodies written from each provider's documentation."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from inbox.models import Message
from statuses.machine import Status
from statuses.models import StatusEvent, WebhookDelivery
from tests.webhooks.conftest import CONTACTS, post_signed, record_send

pytestmark = pytest.mark.django_db


def wa_post_status(client, inbox, wamid: str, status: str, ts: int):
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "statuses": [
                                {
                                    "id": wamid,
                                    "status": status,
                                    "timestamp": str(ts),
                                    "recipient_id": "16505076520",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(b"test_app_secret", raw, hashlib.sha256).hexdigest()
    response = client.post(
        inbox.webhook_path, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )
    assert response.status_code == 200, response.content
    return StatusEvent.objects.filter(provider_message_id=wamid, raw_status=status).latest("id")


def test_a_2016_provider_time_on_a_2026_message_is_its_creation_time(client, inbox, make_message):
    created = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBIyMDE2Q0xPQ0sA"
    message = make_message(inbox, provider_message_id=wamid, created_at=created)
    provider_2016 = datetime(2016, 3, 1, 9, 0, tzinfo=UTC)

    event = wa_post_status(client, inbox, wamid, "sent", int(provider_2016.timestamp()))

    message.refresh_from_db()
    assert (message.status, message.sent_at) == (Status.SENT, created)
    assert event.occurred_at == provider_2016  # the event keeps the provider's raw time


def test_a_provider_time_more_than_five_minutes_ahead_is_the_time_received(
    client, inbox, make_message
):
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJGVVRVUkVDTE9DSwA="
    message = make_message(inbox, provider_message_id=wamid)
    record_send(message, wamid)
    ahead = timezone.now() + timedelta(hours=3)

    event = wa_post_status(client, inbox, wamid, "delivered", int(ahead.timestamp()))

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.delivered_at == event.received_at  # not three hours from now
    assert message.sent_at <= message.delivered_at <= timezone.now()
    assert event.occurred_at == ahead.replace(microsecond=0)  # raw


def test_a_provider_time_a_little_ahead_is_kept(client, inbox, make_message):
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJTS0VXQ0xPQ0sA"
    message = make_message(inbox, provider_message_id=wamid)
    record_send(message, wamid)
    ahead = (timezone.now() + timedelta(minutes=4)).replace(microsecond=0)

    wa_post_status(client, inbox, wamid, "read", int(ahead.timestamp()))

    message.refresh_from_db()
    assert message.read_at == message.delivered_at == ahead  # within 5 minutes: a fine clock


def test_bandwidth_delivered_four_years_before_sent_is_delivered_when_sent(
    client, bandwidth_inbox, make_message
):
    inbox = bandwidth_inbox
    contact, ours = CONTACTS["bandwidth_sms"], inbox.config["from_number"]
    message = make_message(inbox, to=contact, created_at=datetime(2026, 8, 12, 15, 30, tzinfo=UTC))
    sent = datetime(2026, 8, 12, 15, 30, 1, tzinfo=UTC)
    record_send(message, "1786548601000abcdwxyz12345", occurred_at=sent)
    delivered = [
        {
            "type": "message-delivered",
            "time": "2022-08-12T15:30:20.000Z",  # a carrier clock four years behind
            "description": "ok",
            "to": contact,
            "message": {
                "id": "1786548601000abcdwxyz12345",
                "owner": ours,
                "applicationId": inbox.config["application_id"],
                "time": "2022-08-12T15:30:19.000Z",
                "segmentCount": 1,
                "direction": "out",
                "to": [contact],
                "from": ours,
                "text": "",
            },
        }
    ]

    assert post_signed(client, inbox, delivered).status_code == 200

    message.refresh_from_db()
    assert (message.status, message.sent_at, message.delivered_at) == (
        Status.DELIVERED,
        sent,
        sent,
    )
    event = StatusEvent.objects.get(inbox=inbox, raw_status="message-delivered")
    assert event.occurred_at == datetime(2022, 8, 12, 15, 30, 20, tzinfo=UTC)


def test_twilio_minute_precision_delivery_never_precedes_the_accepted_send(
    client, twilio_sms_inbox, make_message
):
    inbox = twilio_sms_inbox
    sid = "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"
    contact = CONTACTS["twilio_sms"]
    message = make_message(
        inbox, to=contact, created_at=datetime(2026, 11, 3, 18, 35, 20, tzinfo=UTC)
    )
    accepted = datetime(2026, 11, 3, 18, 35, 31, tzinfo=UTC)  # a resend, accepted at 18:35:31
    record_send(message, sid, occurred_at=accepted)
    callback = urlencode(
        {
            "AccountSid": inbox.config["account_sid"],
            "ApiVersion": "2010-04-01",
            "From": inbox.config["from_number"],
            "MessageSid": sid,
            "MessageStatus": "delivered",
            "RawDlrDoneDate": "2611031835",  # YYMMDDhhmm: 18:35, to the minute
            "SmsSid": sid,
            "SmsStatus": "delivered",
            "To": contact,
        }
    )

    assert post_signed(client, inbox, callback).status_code == 200

    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.sent_at == accepted
    assert message.delivered_at == accepted  # not 18:35:00, above "send accepted 18:35:31"
    event = StatusEvent.objects.get(inbox=inbox, raw_status="delivered")
    assert event.occurred_at == datetime(2026, 11, 3, 18, 35, tzinfo=UTC)


def test_an_inbound_message_dated_hours_ahead_takes_the_time_received(client, inbox):
    ahead = timezone.now() + timedelta(hours=2)
    within = timezone.now() + timedelta(minutes=3)
    messages = [
        {
            "from": "16505076520",
            "id": f"wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQUFIRUFE{n}AA==",
            "timestamp": str(int(moment.timestamp())),
            "type": "text",
            "text": {"body": f"Hello World {n}"},
        }
        for n, moment in enumerate((ahead, within))
    ]
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": "Ada"}, "wa_id": "16505076520"}],
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(b"test_app_secret", raw, hashlib.sha256).hexdigest()
    response = client.post(
        inbox.webhook_path, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )
    assert response.status_code == 200, response.content

    received = WebhookDelivery.objects.get(inbox=inbox).received_at
    ahead_message = Message.objects.get(content="Hello World 0")
    assert ahead_message.created_at == ahead_message.delivered_at == received
    assert ahead_message.conversation.last_inbound_at <= received + timedelta(minutes=5)
    within_message = Message.objects.get(content="Hello World 1")
    assert within_message.created_at == within.replace(microsecond=0)  # a fine clock: kept
