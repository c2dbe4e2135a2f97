"""Provider statuses land on outgoing messages only; provider ids are unique per (inbox,
direction) (DESIGN §5.1, issue #9 item 1).

Real traffic showed a WhatsApp ``failed`` (131014), a Twilio ``read`` and a Bandwidth
``message-failed`` naming the id of a message the *contact* sent: each turned that inbound
message FAILED/READ. Every body here is written from the provider's documentation and signed as
the provider signs it, and posted to the inbox's real webhook URL.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.models import Message
from statuses import machine
from statuses.machine import Status
from statuses.models import StatusEvent
from tests.webhooks.conftest import CONTACTS, post_signed, record_send

pytestmark = pytest.mark.django_db

WA_SECRET = "test_app_secret"  # the whatsapp_cloud inbox of tests/conftest.py
WA_CONTACT = "16505076520"
T0 = 1767225600  # 2026-01-01T00:00:00Z
T0_DT = datetime.fromtimestamp(T0, tz=UTC)


# --- WhatsApp Cloud bodies (Meta's webhook reference: messages[] and statuses[]) -------------


def wa_body(value: dict) -> dict:
    return {
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
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def wa_inbound(wamid: str, text: str = "Hello World", ts: int = T0) -> dict:
    return wa_body(
        {
            "contacts": [{"profile": {"name": "Ada Lovelace"}, "wa_id": WA_CONTACT}],
            "messages": [
                {
                    "from": WA_CONTACT,
                    "id": wamid,
                    "timestamp": str(ts),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
    )


def wa_status(wamid: str, value: str, ts: int = T0 + 60) -> dict:
    status: dict = {
        "id": wamid,
        "status": value,
        "timestamp": str(ts),
        "recipient_id": WA_CONTACT,
    }
    if value == "failed":
        status["errors"] = [
            {
                "code": 131014,
                "title": "Request for long term media failed",
                "message": "Request for long term media failed",
                "error_data": {"details": "Media could not be retrieved for sending."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return wa_body({"statuses": [status]})


def wa_post(client, inbox, body: dict):
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(WA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        inbox.webhook_path, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )


def snapshot(message: Message) -> tuple:
    message.refresh_from_db()
    return (
        message.status,
        message.version,
        message.sent_at,
        message.delivered_at,
        message.read_at,
        message.failed_at,
        message.error_code,
        message.status_updated_at,
    )


def incoming(inbox, provider_id: str) -> Message:
    return Message.objects.get(inbox=inbox, direction="incoming", provider_message_id=provider_id)


# --- WhatsApp ---------------------------------------------------------------------------------


def test_whatsapp_failed_status_naming_an_inbound_message_leaves_it_unchanged(client, inbox):
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQUE5RDc0QkI5QjQ1NjBGMzJGQwA="
    assert wa_post(client, inbox, wa_inbound(wamid)).status_code == 200
    hello = incoming(inbox, wamid)
    before = snapshot(hello)
    assert before[0] == Status.DELIVERED

    response = wa_post(client, inbox, wa_status(wamid, "failed"))

    assert response.status_code == 200
    assert snapshot(hello) == before
    assert hello.content == "Hello World"
    # Kept, waiting for an outgoing message of ours that might carry this id: not applied.
    event = StatusEvent.objects.get(inbox=inbox, provider_message_id=wamid, status="failed")
    assert (event.message_id, event.outcome, event.error_code) == (None, "parked", "131014")


def test_whatsapp_failed_status_goes_to_our_outgoing_message_with_that_id(
    client, inbox, make_message
):
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    ours = make_message(inbox, to="+" + WA_CONTACT, content="Your order shipped")
    record_send(ours, wamid)
    assert wa_post(client, inbox, wa_inbound(wamid)).status_code == 200
    hello = incoming(inbox, wamid)
    before = snapshot(hello)

    assert wa_post(client, inbox, wa_status(wamid, "failed")).status_code == 200

    assert snapshot(hello) == before
    ours.refresh_from_db()
    assert (ours.status, ours.error_code) == (Status.FAILED, "131014")
    assert StatusEvent.objects.get(status="failed").message_id == ours.id


def test_whatsapp_status_parked_before_both_messages_finds_the_outgoing_one(
    client, inbox, make_message
):
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJGM0E2RDdCNUE3QjI0NzJBOEUA"
    assert wa_post(client, inbox, wa_status(wamid, "read")).status_code == 200  # parked
    assert wa_post(client, inbox, wa_inbound(wamid)).status_code == 200
    hello = incoming(inbox, wamid)
    before = snapshot(hello)

    ours = make_message(inbox, to="+" + WA_CONTACT)
    record_send(ours, wamid)  # the send response: parked statuses for this id now apply

    assert snapshot(hello) == before
    ours.refresh_from_db()
    assert ours.status == Status.READ


def test_inbound_message_with_the_id_of_an_outgoing_one_is_stored(client, inbox, make_message):
    wamid = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI3RjVBQjlFQzY0NjA0MTFFMjQA"
    ours = make_message(inbox, to="+" + WA_CONTACT, content="How can we help?")
    record_send(ours, wamid)
    before = snapshot(ours)

    assert wa_post(client, inbox, wa_inbound(wamid, text="Hello World")).status_code == 200
    assert wa_post(client, inbox, wa_inbound(wamid, text="Hello World")).status_code == 200

    hello = incoming(inbox, wamid)  # stored, and once despite the redelivery
    assert (hello.content, hello.status) == ("Hello World", Status.DELIVERED)
    assert hello.conversation_id == ours.conversation_id
    assert snapshot(ours) == before
    assert Message.objects.filter(inbox=inbox, provider_message_id=wamid).count() == 2


# --- Twilio -----------------------------------------------------------------------------------


def twilio_form(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_twilio_read_callback_on_an_inbound_sms_leaves_it_unchanged(client, twilio_sms_inbox):
    inbox = twilio_sms_inbox
    sid = "SM5e1f3a9c0b7d4e2f8a6c1b3d5e7f9a0b"
    account_sid = inbox.config["account_sid"]
    inbound = twilio_form(
        ToCountry="US",
        SmsMessageSid=sid,
        NumMedia="0",
        SmsSid=sid,
        SmsStatus="received",
        Body="Hello World",
        To=inbox.config["from_number"],
        NumSegments="1",
        MessageSid=sid,
        AccountSid=account_sid,
        From=CONTACTS["twilio_sms"],
        ApiVersion="2010-04-01",
    )
    assert post_signed(client, inbox, inbound).status_code == 200
    hello = incoming(inbox, sid)
    before = snapshot(hello)

    read = twilio_form(
        AccountSid=account_sid,
        ApiVersion="2010-04-01",
        EventType="READ",
        From=inbox.config["from_number"],
        MessageSid=sid,
        MessageStatus="read",
        SmsSid=sid,
        SmsStatus="read",
        To=CONTACTS["twilio_sms"],
    )
    assert post_signed(client, inbox, read).status_code == 200

    assert snapshot(hello) == before
    assert before[0] == Status.DELIVERED and before[4] is None  # never READ, no read_at


# --- Bandwidth --------------------------------------------------------------------------------


def test_bandwidth_failure_naming_an_inbound_message_leaves_it_unchanged(
    client, bandwidth_inbox, make_message
):
    inbox = bandwidth_inbox
    message_id = "1767225600123xo7watq5px6rbe5d"
    ours_number = inbox.config["from_number"]
    contact = CONTACTS["bandwidth_sms"]
    received = [
        {
            "type": "message-received",
            "time": "2026-08-12T15:30:15.876Z",
            "description": "Incoming message received",
            "to": ours_number,
            "message": {
                "id": message_id,
                "owner": ours_number,
                "applicationId": inbox.config["application_id"],
                "time": "2026-08-12T15:30:15.876Z",
                "segmentCount": 1,
                "direction": "in",
                "to": [ours_number],
                "from": contact,
                "text": "Hello World",
            },
        }
    ]
    assert post_signed(client, inbox, received).status_code == 200
    hello = incoming(inbox, message_id)
    before = snapshot(hello)
    failed = [
        {
            "type": "message-failed",
            "time": "2026-08-12T15:31:02Z",
            "description": "rejected-unallocated-to-number",
            "to": contact,
            "errorCode": 4406,
            "message": {
                "id": message_id,
                "owner": ours_number,
                "applicationId": inbox.config["application_id"],
                "time": "2026-08-12T15:31:01.311Z",
                "segmentCount": 1,
                "direction": "out",
                "to": [contact],
                "from": ours_number,
                "text": "",
            },
        }
    ]
    assert post_signed(client, inbox, failed).status_code == 200
    assert snapshot(hello) == before

    # Our message with that id is sent later (the send response was slow): the failure,
    # parked meanwhile, is its own.
    ours = make_message(inbox, to=contact, content="Reminder: appointment at 3pm")
    record_send(ours, message_id)
    assert snapshot(hello) == before
    ours.refresh_from_db()
    assert (ours.status, ours.error_code) == (Status.FAILED, "4406")


# --- The constraint ---------------------------------------------------------------------------


def test_provider_ids_are_unique_per_inbox_and_direction_in_the_database(inbox, make_message):
    first = make_message(inbox, provider_message_id="wamid.same")
    Message.objects.create(
        account_id=inbox.account_id,
        inbox=inbox,
        conversation=first.conversation,
        channel_type=inbox.channel_type,
        direction="incoming",
        content="Hello World",
        provider_message_id="wamid.same",
        status=Status.DELIVERED,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        make_message(inbox, provider_message_id="wamid.same")


# --- Property: interleavings ------------------------------------------------------------------

_example = itertools.count()
WA_STATUS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
steps = st.lists(
    st.one_of(
        st.tuples(st.just("inbound"), st.integers(0, 2)),
        st.tuples(st.just("outgoing"), st.integers(0, 2)),
        st.tuples(st.just("status"), st.integers(0, 2), st.sampled_from(sorted(WA_STATUS))),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(steps=steps)
def test_no_interleaving_of_inbound_messages_and_statuses_changes_an_inbound_message(
    client, account, make_inbox, make_message, steps
):
    """Inbound messages, our sends and provider statuses sharing ids, in any order: no inbound
    message ever changes, and each outgoing message ends as the merge rule says over its own
    send and every status posted for its id (parked ones included)."""
    inbox = make_inbox(account)
    run = next(_example)
    wamid = [f"wamid.p{run}.{k}" for k in range(3)]
    seen: dict[int, tuple] = {}  # inbound message → its state when first stored
    outgoing: dict[int, Message] = {}
    posted: dict[int, list[str]] = {k: [] for k in range(3)}
    for number, step in enumerate(steps):
        kind, k = step[0], step[1]
        if kind == "inbound":
            body = wa_inbound(wamid[k], text=f"inbound {k}", ts=T0 + number)
            assert wa_post(client, inbox, body).status_code == 200
        elif kind == "outgoing" and k not in outgoing:
            outgoing[k] = make_message(inbox, to="+" + WA_CONTACT, content=f"ours {k}")
            record_send(outgoing[k], wamid[k])
        elif kind == "status":
            body = wa_status(wamid[k], step[2], ts=T0 + 100 + number)
            assert wa_post(client, inbox, body).status_code == 200
            posted[k].append(WA_STATUS[step[2]])
        for message in Message.objects.filter(inbox=inbox, direction="incoming"):
            k_of = wamid.index(message.provider_message_id)
            state = snapshot(message)
            assert seen.setdefault(k_of, state) == state, f"inbound {k_of} changed at {step}"
            assert state[0] == Status.DELIVERED and state[6] == ""
    for k, message in outgoing.items():
        message.refresh_from_db()
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=1)
        events = [machine.Event(Status.SENT, at)] + [machine.Event(s, at) for s in posted[k]]
        assert message.status == machine.merge(events).status, (k, posted[k])


# --- Watermarks -------------------------------------------------------------------------------


def test_instagram_read_naming_an_inbound_mid_marks_nothing_read(
    client, instagram_inbox, make_message
):
    """``read.mid`` names the newest of *our* messages read; one naming the contact's own
    message is no evidence that anything of ours was read."""
    inbox = instagram_inbox
    contact, ig_user = CONTACTS["instagram"], inbox.config["ig_user_id"]
    ours = make_message(
        inbox, to=contact, provider_message_id="aWdfZAG1faXRlbToxOk9VUlMA", created_at=T0_DT
    )
    record_send(ours, "aWdfZAG1faXRlbToxOk9VUlMA", occurred_at=T0_DT)
    inbound_mid = "aWdfZAG1faXRlbToxOkNPTlRBQ1QA"
    inbound = {
        "object": "instagram",
        "entry": [
            {
                "id": ig_user,
                "time": (T0 + 600) * 1000,
                "messaging": [
                    {
                        "sender": {"id": contact},
                        "recipient": {"id": ig_user},
                        "timestamp": (T0 + 600) * 1000,
                        "message": {"mid": inbound_mid, "text": "Hello World"},
                    }
                ],
            }
        ],
    }
    assert post_signed(client, inbox, inbound).status_code == 200
    hello = incoming(inbox, inbound_mid)
    before_hello, before_ours = snapshot(hello), snapshot(ours)
    seen = {
        "object": "instagram",
        "entry": [
            {
                "id": ig_user,
                "time": (T0 + 700) * 1000,
                "messaging": [
                    {
                        "sender": {"id": contact},
                        "recipient": {"id": ig_user},
                        "timestamp": (T0 + 700) * 1000,
                        "read": {"mid": inbound_mid},
                    }
                ],
            }
        ],
    }

    assert post_signed(client, inbox, seen).status_code == 200

    assert snapshot(hello) == before_hello
    assert snapshot(ours) == before_ours and before_ours[0] == Status.SENT
