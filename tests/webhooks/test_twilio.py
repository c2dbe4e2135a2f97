"""Twilio status callbacks (SMS and WhatsApp) through the real endpoint, signed with Twilio's own
``RequestValidator`` over the public URL (PUBLIC_BASE_URL + path + query, incl. ``tm``)."""

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from inbox.models import Message
from statuses import correlation
from statuses.machine import UNRECOGNIZED, Status
from statuses.models import StatusEvent, WebhookDelivery
from statuses.providers import twilio
from tests.webhooks.conftest import (
    CONTACTS,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    forged,
    post_raw,
    post_signed,
    public_url,
    record_send,
    sign,
    twilio_params,
)

pytestmark = pytest.mark.django_db

# Our messages were created before the provider times these bodies carry: lifecycle timestamps
# never precede the creation (DESIGN §5.1).
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
SID = "SM1342fe1b2c904d1ab04f0fc7a58abca9"
TO = CONTACTS["twilio_sms"]


def callback(inbox, sid=SID, status="delivered", **extra):
    whatsapp = inbox.channel_type == "twilio_whatsapp"
    prefix = "whatsapp:" if whatsapp else ""
    params = {
        "AccountSid": inbox.config["account_sid"],
        "ApiVersion": "2010-04-01",
        "From": inbox.config["from_number"],
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": prefix + TO,
    }
    if whatsapp:
        params["ChannelPrefix"] = "whatsapp"
    params.update(extra)
    return urlencode(params)


@pytest.fixture(params=["twilio_sms", "twilio_whatsapp"])
def any_inbox(request, provider_inbox):
    return provider_inbox(request.param)


def test_signature_is_twilios_own_cross_checked_with_the_reference_vectors():
    # Twilio's documented example and the reference §13 status-callback vector, through the SDK
    # and through the adapter: the three computations agree.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert (
        RequestValidator("12345").compute_signature(url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    assert twilio.signature_for("12345", url, {k: [v] for k, v in params.items()}) == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    status_params = {
        "AccountSid": "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "ApiVersion": "2010-04-01",
        "From": "+15017250604",
        "MessageSid": SID,
        "MessageStatus": "delivered",
        "RawDlrDoneDate": "2608121530",
        "SmsSid": SID,
        "SmsStatus": "delivered",
        "To": "+15558675310",
    }
    url = "https://inbox.example.com/webhooks/twilio/status/"
    expected = "FgHXAzZ+mvW0wURec+/MR3kic9w="
    assert (
        RequestValidator("test_auth_token_0123456789abcdef").compute_signature(url, status_params)
        == expected
    )
    assert (
        twilio.signature_for(
            "test_auth_token_0123456789abcdef", url, {k: [v] for k, v in status_params.items()}
        )
        == expected
    )


def test_the_public_https_url_is_what_is_signed(client, settings, twilio_sms_inbox, make_message):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    message = make_message(twilio_sms_inbox, to=TO, provider_message_id=SID)
    body = callback(twilio_sms_inbox)
    validator = RequestValidator(twilio_sms_inbox.config["auth_token"])
    # Twilio may sign the URL with the explicit default port: both forms are accepted.
    for url in (
        public_url(twilio_sms_inbox),
        public_url(twilio_sms_inbox).replace(".com/", ".com:443/"),
    ):
        signature = validator.compute_signature(url, twilio_params(body.encode()))
        response = post_raw(
            client,
            twilio_sms_inbox,
            body.encode(),
            headers={"X-Twilio-Signature": signature},
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
    # signed for the wrong host (e.g. the internal one) → refused
    signature = validator.compute_signature(
        "http://127.0.0.1:8000" + twilio_sms_inbox.webhook_path, {"MessageSid": SID}
    )
    response = post_raw(
        client,
        twilio_sms_inbox,
        body.encode(),
        headers={"X-Twilio-Signature": signature},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Status.DELIVERED


def test_sms_sent_then_delivered(client, twilio_sms_inbox, make_message):
    message = make_message(twilio_sms_inbox, to=TO, provider_message_id=SID, created_at=CREATED)
    assert (
        post_signed(client, twilio_sms_inbox, callback(twilio_sms_inbox, status="sent")).status_code
        == 200
    )
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.SENT, "single")
    response = post_signed(
        client, twilio_sms_inbox, callback(twilio_sms_inbox, RawDlrDoneDate="2608121530")
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.DELIVERED, "double")
    # The carrier's time (minute precision) precedes when the "sent" callback, which carries no
    # time, reached us: delivered_at never precedes sent_at; the event keeps the carrier's time.
    assert message.delivered_at == message.sent_at
    delivered = StatusEvent.objects.get(inbox=twilio_sms_inbox, status="delivered")
    assert delivered.occurred_at.isoformat() == "2026-08-12T15:30:00+00:00"
    assert WebhookDelivery.objects.filter(inbox=twilio_sms_inbox, verdict="accepted").count() == 2


def test_whatsapp_read_is_a_blue_tick(client, twilio_whatsapp_inbox, make_message):
    message = make_message(twilio_whatsapp_inbox, to=TO, provider_message_id=SID)
    body = callback(twilio_whatsapp_inbox, status="read", EventType="READ")
    assert post_signed(client, twilio_whatsapp_inbox, body).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.READ, "blue")


@pytest.mark.parametrize(
    ("channel_type", "status", "code"),
    [
        ("twilio_sms", "undelivered", "30003"),
        ("twilio_sms", "failed", "30007"),
        ("twilio_whatsapp", "failed", "63016"),
    ],
)
def test_failed_with_error_code_takes_the_catalogue_title(
    client, provider_inbox, make_message, channel_type, status, code
):
    inbox = provider_inbox(channel_type)
    message = make_message(inbox, to=TO, provider_message_id=SID)
    post_signed(client, inbox, callback(inbox, status="sent"))
    body = callback(inbox, status=status, ErrorCode=code, ChannelStatusMessage="carrier says no")
    assert post_signed(client, inbox, body).status_code == 200
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.FAILED, "failed")
    assert message.error_code == code
    assert message.error_title == twilio.ERRORS[code].title
    assert message.error_detail == "carrier says no"


def test_redelivered_callback_is_one_event(client, any_inbox, make_message):
    message = make_message(any_inbox, to=TO, provider_message_id=SID)
    body = callback(any_inbox, RawDlrDoneDate="2608121530")
    assert post_signed(client, any_inbox, body).status_code == 200
    assert post_signed(client, any_inbox, body).status_code == 200
    event = StatusEvent.objects.get(inbox=any_inbox)
    assert (event.duplicate_count, event.outcome) == (1, "applied")
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.DELIVERED, 2)
    assert WebhookDelivery.objects.filter(inbox=any_inbox).count() == 2  # both calls recorded


def test_out_of_order_callbacks_converge(client, twilio_whatsapp_inbox, make_message):
    inbox = twilio_whatsapp_inbox
    sequence = [
        ("queued", {}),
        ("sent", {}),
        ("delivered", {"RawDlrDoneDate": "2608121530"}),
        ("read", {"EventType": "READ"}),
    ]
    forward = make_message(inbox, to=TO, provider_message_id="SMforward", created_at=CREATED)
    backward = make_message(inbox, to=TO, provider_message_id="SMbackward", created_at=CREATED)
    for status, extra in sequence:
        assert (
            post_signed(client, inbox, callback(inbox, "SMforward", status, **extra)).status_code
            == 200
        )
    for status, extra in reversed(sequence):
        assert (
            post_signed(client, inbox, callback(inbox, "SMbackward", status, **extra)).status_code
            == 200
        )
    forward.refresh_from_db()
    backward.refresh_from_db()
    assert forward.status == backward.status == Status.READ
    for message in (forward, backward):  # sent_at: when each "sent" arrived (it has no time)
        assert message.sent_at <= message.delivered_at <= message.read_at
        assert message.delivered_at == message.sent_at  # the carrier's 15:30 is earlier


def test_status_before_the_send_response_is_parked_then_applied(
    client, twilio_sms_inbox, make_message
):
    message = make_message(twilio_sms_inbox, to=TO)  # no provider id yet
    assert post_signed(client, twilio_sms_inbox, callback(twilio_sms_inbox)).status_code == 200
    event = StatusEvent.objects.get(inbox=twilio_sms_inbox)
    assert (event.outcome, event.message_id) == ("parked", None)
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    record_send(message, SID)
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.DELIVERED, SID)
    event.refresh_from_db()
    assert event.message_id == message.id


def test_tm_correlation_param_matches_when_the_send_response_was_lost(
    client, twilio_sms_inbox, make_message
):
    message = make_message(twilio_sms_inbox, to=TO)
    query = urlencode({"tm": correlation.make(message.id, 1)})
    response = post_signed(client, twilio_sms_inbox, callback(twilio_sms_inbox), query=query)
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.DELIVERED, SID)


def test_tampered_tm_param_breaks_the_signature(client, twilio_sms_inbox, make_message):
    message = make_message(twilio_sms_inbox, to=TO)
    signed = sign(
        twilio_sms_inbox, callback(twilio_sms_inbox), query="tm=" + correlation.make(message.id, 1)
    )
    response = post_raw(
        client,
        twilio_sms_inbox,
        signed.body,
        headers=signed.headers,
        content_type=signed.content_type,
        query="tm=" + correlation.make(message.id, 2),
    )
    assert_refused_and_nothing_changed(response, twilio_sms_inbox, [message])


def test_forged_signature_is_403_and_changes_nothing(client, any_inbox, make_message):
    message = make_message(any_inbox, to=TO, provider_message_id=SID)
    signed = sign(any_inbox, callback(any_inbox))
    response = post_raw(
        client, any_inbox, signed.body, headers=forged(signed), content_type=signed.content_type
    )
    assert_refused_and_nothing_changed(response, any_inbox, [message])
    # signed with another account's token
    other = RequestValidator("0" * 32).compute_signature(public_url(any_inbox), {"MessageSid": SID})
    response = post_raw(
        client,
        any_inbox,
        signed.body,
        headers={"X-Twilio-Signature": other},
        content_type=signed.content_type,
    )
    assert_refused_and_nothing_changed(response, any_inbox, [message])
    # a body altered after signing
    tampered = signed.body.replace(b"delivered", b"undelivered")
    response = post_raw(
        client, any_inbox, tampered, headers=signed.headers, content_type=signed.content_type
    )
    assert_refused_and_nothing_changed(response, any_inbox, [message])


def test_missing_signature_is_403(client, twilio_sms_inbox, make_message):
    message = make_message(twilio_sms_inbox, to=TO, provider_message_id=SID)
    response = post_raw(
        client,
        twilio_sms_inbox,
        callback(twilio_sms_inbox).encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert_refused_and_nothing_changed(response, twilio_sms_inbox, [message])


@pytest.mark.parametrize(
    "raw",
    [
        b"MessageStatus=delivered&To=%2B15558675310",
        b"AccountSid=AC1&MessageSid=SM1",
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_body_is_400_and_kept(client, twilio_sms_inbox, raw):
    assert_malformed_kept(post_signed(client, twilio_sms_inbox, raw), twilio_sms_inbox, raw)


def test_unknown_status_is_200_and_an_event_that_changes_nothing(
    client, twilio_sms_inbox, make_message
):
    message = make_message(twilio_sms_inbox, to=TO, provider_message_id=SID)
    post_signed(client, twilio_sms_inbox, callback(twilio_sms_inbox, status="sent"))
    response = post_signed(
        client, twilio_sms_inbox, callback(twilio_sms_inbox, status="held_by_carrier")
    )
    assert response.status_code == 200
    event = StatusEvent.objects.get(raw_status="held_by_carrier")
    assert (event.status, event.message_id, event.outcome) == (UNRECOGNIZED, message.id, "recorded")
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.SENT, 2)


def test_inbound_sms_is_stored_once_in_the_contacts_conversation(
    client, twilio_sms_inbox, make_message
):
    earlier = make_message(twilio_sms_inbox, to=TO, provider_message_id="SMout")
    body = urlencode(
        {
            "AccountSid": twilio_sms_inbox.config["account_sid"],
            "MessageSid": "SMinbound1",
            "SmsStatus": "received",
            "From": TO,
            "To": "+15017250604",
            "Body": "Is my order shipped?",
            "NumMedia": "0",
        }
    )
    assert post_signed(client, twilio_sms_inbox, body).status_code == 200
    assert post_signed(client, twilio_sms_inbox, body).status_code == 200  # redelivered
    inbound = Message.objects.get(inbox=twilio_sms_inbox, direction="incoming")
    assert inbound.content == "Is my order shipped?"
    assert inbound.provider_message_id == "SMinbound1"
    assert inbound.conversation_id == earlier.conversation_id
    assert inbound.conversation.unread_count == 1


def test_inbound_whatsapp_drops_the_prefix_and_keeps_the_profile_name(
    client, twilio_whatsapp_inbox
):
    body = urlencode(
        {
            "MessageSid": "SMwa1",
            "From": "whatsapp:" + TO,
            "To": "whatsapp:+14155238886",
            "Body": "Hola",
            "ProfileName": "Ada",
        }
    )
    assert post_signed(client, twilio_whatsapp_inbox, body).status_code == 200
    inbound = Message.objects.get(inbox=twilio_whatsapp_inbox, direction="incoming")
    assert inbound.conversation.contact.address == TO
    assert inbound.conversation.contact.name == "Ada"
    assert inbound.conversation.last_inbound_at is not None
