"""The provider webhook endpoint, end to end through Django, with WhatsApp Cloud payloads signed
with the real algorithm: verify, record, parse, merge, park, and answer correctly."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from inbox.models import Message
from statuses import correlation
from statuses.machine import Status
from statuses.models import StatusEvent, WebhookDelivery

APP_SECRET = "test_app_secret"
pytestmark = pytest.mark.django_db

# Our messages were created before the provider times these bodies carry: lifecycle timestamps
# never precede the creation (DESIGN §5.1).
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def status(wamid, value, ts=1767225600, **extra):
    return {
        "id": wamid,
        "status": value,
        "timestamp": str(ts),
        "recipient_id": "16505076520",
        **extra,
    }


def payload(*statuses, messages=None, entries=1):
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
    }
    if statuses:
        value["statuses"] = list(statuses)
    if messages:
        value["messages"] = messages
        value["contacts"] = [{"profile": {"name": "Ada"}, "wa_id": messages[0]["from"]}]
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
            for _ in range(entries)
        ],
    }


def post(client, inbox, body, secret=APP_SECRET, signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {}
    if signature is None and secret is not None:
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(inbox.webhook_path, raw, content_type="application/json", **headers)


def test_reference_vector_signature_is_accepted(client, make_inbox, account):
    inbox = make_inbox(account)
    body = b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}]}'
    sig = "sha256=27145d73ab3382782d68f62257bd98327912e106d9a3dc704fe8a14695d63efd"
    assert post(client, inbox, body, signature=sig).status_code == 200


def test_handshake_echoes_the_challenge_and_refuses_a_wrong_token(client, inbox):
    ok = client.get(
        inbox.webhook_path,
        {
            "hub.mode": "subscribe",
            "hub.verify_token": "test-verify-token",
            "hub.challenge": "1158201444",
        },
    )
    assert (ok.status_code, ok.content) == (200, b"1158201444")
    bad = client.get(
        inbox.webhook_path,
        {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
    )
    assert bad.status_code == 403


def test_statuses_move_the_message_through_its_ticks(client, inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.A", created_at=CREATED)
    assert (
        post(client, inbox, payload(status("wamid.A", "delivered", 1767225610))).status_code == 200
    )
    message.refresh_from_db()
    assert message.status == Status.DELIVERED and message.tick == "double"
    post(client, inbox, payload(status("wamid.A", "read", 1767225620)))
    post(client, inbox, payload(status("wamid.A", "sent", 1767225601)))  # late, out of order
    message.refresh_from_db()
    assert (message.status, message.tick) == (Status.READ, "blue")
    assert message.sent_at.timestamp() == 1767225601


def test_forged_signature_is_403_and_changes_nothing(client, inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.F")
    body = payload(status("wamid.F", "read"))
    assert post(client, inbox, body, secret="not-the-secret").status_code == 403
    assert post(client, inbox, body, secret=None).status_code == 403
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert not StatusEvent.objects.exists()
    assert WebhookDelivery.objects.filter(verdict="forbidden").count() == 2


def test_malformed_body_is_400_and_kept(client, inbox):
    raw = b'{"object": "whatsapp_business_account", "entry": [ {'
    response = post(client, inbox, raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.verdict, bytes(delivery.body)) == ("malformed", raw)


def test_unknown_status_is_200_and_kept(client, inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.U")
    assert post(client, inbox, payload(status("wamid.U", "warning"))).status_code == 200
    event = StatusEvent.objects.get()
    assert (event.raw_status, event.status, event.message_id) == ("warning", "", message.id)
    message.refresh_from_db()
    assert message.status == Status.QUEUED


def test_failed_keeps_the_whole_error(client, inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.E")
    error = {
        "code": 131049,
        "title": "This message was not delivered to maintain healthy ecosystem engagement.",
        "message": "This message was not delivered to maintain healthy ecosystem engagement.",
        "error_data": {
            "details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
        },
    }
    post(
        client,
        inbox,
        payload(status("wamid.E", "sent"), status("wamid.E", "failed", errors=[error])),
    )
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == "131049"
    assert "healthy ecosystem" in message.error_title + message.error_detail


def test_parked_status_is_applied_when_the_send_response_arrives(client, inbox, make_message):
    from statuses import services
    from statuses.providers.base import SendOutcome, SendResult

    message = make_message(inbox)
    post(client, inbox, payload(status("wamid.P", "delivered"), status("wamid.P", "read")))
    assert StatusEvent.objects.filter(outcome="parked").count() == 2
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id="wamid.P"),
    )
    message.refresh_from_db()
    assert message.status == Status.READ


def test_correlation_id_matches_when_the_send_response_was_lost(client, inbox, make_message):
    message = make_message(inbox)
    opaque = correlation.make(message.id, 1)
    post(client, inbox, payload(status("wamid.L", "delivered", biz_opaque_callback_data=opaque)))
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.DELIVERED, "wamid.L")


def test_redelivered_webhook_is_stored_once(client, inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.D")
    body = payload(status("wamid.D", "delivered"))
    post(client, inbox, body)
    post(client, inbox, body)
    event = StatusEvent.objects.get()
    assert event.duplicate_count == 1
    message.refresh_from_db()
    assert message.version == 2


def test_inbound_message_opens_the_service_window(client, inbox):
    inbound = [
        {
            "from": "16505076520",
            "id": "wamid.IN1",
            "timestamp": "1767225600",
            "type": "text",
            "text": {"body": "Hi there"},
        }
    ]
    post(client, inbox, payload(messages=inbound))
    post(client, inbox, payload(messages=inbound))  # redelivery: stored once
    message = Message.objects.get(direction="incoming")
    assert message.content == "Hi there"
    assert message.conversation.contact.address == "+16505076520"
    assert message.conversation.last_inbound_at is not None


@pytest.mark.requires_postgres(
    "the constant statement count comes from PostgreSQL's one-statement UPDATE … FROM unnest(); SQLite (embedded mode) writes changed messages row by row"
)
def test_every_status_of_a_batch_is_applied_in_constant_queries(client, inbox, make_message):
    def run(n, tag):
        for i in range(n):
            make_message(inbox, provider_message_id=f"wamid.{tag}{i}")
        statuses = [status(f"wamid.{tag}{i}", s) for i in range(n) for s in ("delivered", "read")]
        # spread over several entries to check that every entry/change is read
        body = payload(*statuses)
        with CaptureQueriesContext(connection) as queries:
            assert post(client, inbox, body).status_code == 200
        return len(queries)

    run(1, "w")  # the inbox is kept from here on (inbox.caches)
    small = run(2, "s")
    large = run(250, "l")  # 500 statuses in one webhook
    assert Message.objects.filter(status=Status.READ).count() == 253
    assert large == small, f"{small} statements for 4 statuses, {large} for 500"


def _database_dies_on(prefix):
    """A query wrapper (Django's execute_wrapper hook) that makes the server fail at one point."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(prefix):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    return wrapper


def test_database_down_answers_503(client, inbox):
    with connection.execute_wrapper(_database_dies_on("SELECT")):
        response = post(client, inbox, payload(status("wamid.X", "read")))
    assert response.status_code == 503
    assert response["Retry-After"]


def test_database_failing_mid_batch_writes_nothing_and_answers_503(client, inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.M")
    body = payload(status("wamid.M", "delivered"), status("wamid.M", "read"))
    # Where the messages are written: on PostgreSQL with their events, in one statement.
    with (
        connection.execute_wrapper(_database_dies_on('UPDATE "INBOX_MESSAGE"')),
        connection.execute_wrapper(_database_dies_on("UPDATE INBOX_MESSAGE")),
        connection.execute_wrapper(_database_dies_on("WITH INS AS")),
    ):
        response = post(client, inbox, body)
    assert response.status_code == 503
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert not StatusEvent.objects.exists()  # the events of the failed transaction are gone too
    # the provider retries: the same webhook then applies completely
    assert post(client, inbox, body).status_code == 200
    message.refresh_from_db()
    assert message.status == Status.READ
