"""statuses.sending.message_send against local fake providers (real HTTP over real sockets)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from channels_app import groups
from inbox.exceptions import OutsideServiceWindow
from statuses import correlation, outbound, sending
from statuses.machine import Status
from statuses.models import SendRateBucket, SendTry, StatusEvent
from tests.fakes.recorder import Reply

pytestmark = pytest.mark.django_db

WA_TO = "+16505076520"


@pytest.fixture
def wa_inbox(account, make_inbox, provider):
    return make_inbox(account, "whatsapp_cloud", api_base_url=provider.url)


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


def create(inbox, to=WA_TO, content="Hello", **kwargs):
    message, _ = outbound.message_create_outgoing(
        account=inbox.account, inbox=inbox, to=to, content=content, **kwargs
    )
    return message


def send(message):
    outcome = sending.message_send(message_id=message.id, attempt=message.attempt)
    message.refresh_from_db()
    return outcome


def send_tasks(message):
    return DBTaskResult.objects.filter(
        task_path="statuses.tasks.send_message",
        args_kwargs__args=[str(message.id), message.attempt],
    )


def wa_accept(wamid="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI"):
    return Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": wamid}]})


def test_create_enqueues_send_in_the_same_transaction(wa_inbox, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    assert message.status == Status.QUEUED
    assert send_tasks(message).count() == 1


def test_whatsapp_accepted_is_sent_with_the_documented_request(wa_inbox, provider, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    provider.queue(wa_accept())

    assert send(message) == "accepted"

    (request,) = provider.requests
    assert request.method == "POST"
    assert request.path == "/v21.0/106540352242922/messages"
    assert request.headers["authorization"] == "Bearer test-access-token"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505076520",
        "type": "text",
        "text": {"body": "Hello"},
        "biz_opaque_callback_data": correlation.make(message.id, 1),
    }
    assert message.status == Status.SENT
    assert message.provider_message_id == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI"
    assert message.sent_at is not None
    (send_try,) = SendTry.objects.filter(message=message)
    assert (send_try.outcome, send_try.number, send_try.attempt) == ("accepted", 1, 1)
    assert send_try.finished_at is not None


def test_a_duplicate_task_never_sends_twice(wa_inbox, provider, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    provider.queue(wa_accept())
    assert send(message) == "accepted"
    assert send(message) == "skipped"
    assert sending.message_send(message_id=message.id, attempt=2) == "skipped"
    assert len(provider.requests) == 1


def test_a_task_for_another_attempt_does_nothing(wa_inbox, provider, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    assert sending.message_send(message_id=message.id, attempt=2) == "skipped"
    assert provider.requests == []


def test_a_try_in_flight_blocks_a_second_copy(wa_inbox, provider, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    SendTry.objects.create(message=message, attempt=1, number=1)  # another worker mid-request
    assert send(message) == "skipped"
    assert provider.requests == []


def test_parked_statuses_are_applied_with_the_send_result(wa_inbox, provider, open_window):
    from statuses import services
    from statuses.providers.base import StatusUpdate

    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    services.status_updates_apply(
        inbox=wa_inbox,
        updates=[
            StatusUpdate(
                provider_message_id="wamid.early",
                status=Status.DELIVERED,
                raw_status="delivered",
                occurred_at=timezone.now(),
                dedupe_key="wamid.early:delivered",
            )
        ],
    )
    provider.queue(wa_accept("wamid.early"))
    send(message)
    assert message.status == Status.DELIVERED


def test_rejected_is_failed_with_the_catalogue_explanation(wa_inbox, provider, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    provider.queue(Reply(400, {"error": {"code": 131026, "type": "OAuthException"}}))

    assert send(message) == "rejected"

    assert message.status == Status.FAILED
    assert message.error_code == "131026"
    assert message.error_title == "Message undeliverable"
    assert message.error_detail.startswith("The number is not on WhatsApp")
    assert SendTry.objects.get(message=message).outcome == "rejected"


def test_twilio_rejection_keeps_the_provider_text(twilio_inbox, provider):
    message = create(twilio_inbox, to="+15558675310")
    provider.queue(
        Reply(
            400,
            {"code": 21211, "message": "The 'To' number is not valid.", "status": 400},
        )
    )
    send(message)
    request = provider.requests[0]
    assert request.path == f"/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
    credentials = base64.b64decode(request.headers["authorization"].split()[1]).decode()
    assert credentials == f"AC{'1' * 32}:twilio-token"
    form = request.form()
    assert form["To"] == ["+15558675310"] and form["From"] == ["+15017250604"]
    assert form["Body"] == ["Hello"]
    assert form["StatusCallback"] == [
        f"{twilio_inbox.webhook_url}?tm={correlation.make(message.id, 1)}"
    ]
    assert (message.status, message.error_code) == (Status.FAILED, "21211")
    assert message.error_title == "Invalid 'To' phone number"
    assert message.error_detail == "The 'To' number is not valid."


def test_429_is_retried_after_retry_after_then_sent(wa_inbox, provider, open_window, settings):
    settings.SEND_RETRY_BASE = 1
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    provider.queue(
        Reply(
            429, {"error": {"code": 130429, "message": "Rate limit hit"}}, {"Retry-After": "120"}
        ),
        wa_accept(),
    )
    before = timezone.now()

    assert send(message) == "retrying"

    assert message.status == Status.QUEUED
    retry = send_tasks(message).filter(status="READY").exclude(run_after__year=9999).get()
    assert before + timedelta(seconds=119) < retry.run_after < before + timedelta(seconds=125)
    first = SendTry.objects.get(message=message)
    assert first.outcome == "transient" and first.error_code == "130429"
    assert first.retry_at == pytest.approx(retry.run_after, abs=timedelta(seconds=1))
    assert not StatusEvent.objects.filter(message=message).exists()  # a try is not a status

    # Retry-After holds for the whole inbox (statuses.sendrate): run early, the send goes back.
    assert send(message) == "deferred"
    assert len(provider.requests) == 1
    # ... once the 120 s are over (the pause moved into the past), it goes.
    SendRateBucket.objects.filter(inbox=wa_inbox).update(blocked_until=0, slowed_at=0)
    assert send(message) == "accepted"
    assert message.status == Status.SENT
    assert [t.outcome for t in SendTry.objects.filter(message=message)] == ["transient", "accepted"]
    assert len(provider.requests) == 2


def test_backoff_grows_with_jitter(settings):
    settings.SEND_RETRY_BASE = 30
    settings.SEND_RETRY_MAX_DELAY = 1200
    for number, ceiling in [(1, 30), (2, 60), (3, 120), (7, 1200), (12, 1200)]:
        delays = [sending.retry_delay(number) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert sending.retry_delay(1, retry_after=500) >= 500


def test_retries_are_capped_then_failed(wa_inbox, provider, open_window, settings):
    settings.SEND_MAX_TRIES = 3
    settings.SEND_RETRY_BASE = 0.01
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    provider.default_reply = Reply(503, {"error": {"code": 2, "message": "Service unavailable"}})

    outcomes = [send(message) for _ in range(3)]

    assert outcomes == ["retrying", "retrying", "rejected"]
    assert message.status == Status.FAILED
    assert message.error_code == sending.RETRIES_EXHAUSTED
    assert "3 tries" in message.error_detail
    assert len(provider.requests) == 3


def test_connection_refused_is_retried(wa_inbox, closed_port, open_window):
    wa_inbox.config["api_base_url"] = f"http://127.0.0.1:{closed_port}"
    wa_inbox.save()
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    assert send(message) == "retrying"
    assert message.status == Status.QUEUED
    assert SendTry.objects.get(message=message).error_code == "connection_failed"


def test_timeout_is_unknown_and_never_resent(wa_inbox, provider, open_window, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    sending._client = None  # pick up the short timeout
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    provider.queue(Reply(200, {"messages": [{"id": "wamid.late"}]}, delay=1.0))
    try:
        assert send(message) == "unknown"
    finally:
        sending._client = None
    assert message.status == Status.UNKNOWN
    assert message.error_code == "" and message.provider_message_id is None
    assert send(message) == "skipped"
    assert len(provider.requests) == 1
    assert send_tasks(message).filter(status="READY").count() == 1  # only the original task


def test_line_acceptance_is_delivered(account, make_inbox, provider):
    inbox = make_inbox(
        account, "line", channel_access_token="line-token", api_base_url=provider.url
    )
    message = create(inbox, to="U4af4980629")
    provider.queue(Reply(200, {"sentMessages": [{"id": "461230966842064897"}]}))
    send(message)
    request = provider.requests[0]
    assert request.path == "/v2/bot/message/push"
    assert request.headers["authorization"] == "Bearer line-token"
    assert request.headers["x-line-retry-key"]
    assert message.status == Status.DELIVERED
    assert message.provider_message_id == "461230966842064897"


@pytest.mark.django_db(transaction=True)
def test_web_widget_push_reaches_the_contact_socket_after_commit(account, make_inbox):
    inbox = make_inbox(account, "web_widget")
    message = create(inbox, to="visitor-2", content="Hi there")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(groups.widget_contact(message.conversation.contact_id), channel)

    send(message)

    event = async_to_sync(layer.receive)(channel)
    assert event["type"] == "widget.event"
    assert event["event"] == {
        "type": "message",
        "message_id": str(message.id),
        "content": "Hi there",
        "created_at": message.created_at.isoformat(),
    }
    assert message.status == Status.SENT


def test_resend_sends_again_with_a_new_attempt_and_provider_id(wa_inbox, provider, open_window):
    open_window(wa_inbox, WA_TO)
    message = create(wa_inbox)
    # A code the catalogue does not know: a resend may help (a known permanent one is refused).
    provider.queue(Reply(400, {"error": {"code": 131999, "message": "Something new"}}))
    send(message)
    assert message.status == Status.FAILED

    message = outbound.message_resend(message=message)
    assert (message.attempt, message.status) == (2, Status.QUEUED)
    assert send_tasks(message).filter(status="READY").count() == 1
    provider.queue(wa_accept("wamid.second"))
    assert send(message) == "accepted"

    assert (message.status, message.provider_message_id) == (Status.SENT, "wamid.second")
    assert message.error_code == ""
    second = provider.requests[1].json()
    assert second["biz_opaque_callback_data"] == correlation.make(message.id, 2)
    assert [(t.attempt, t.outcome) for t in SendTry.objects.filter(message=message)] == [
        (1, "rejected"),
        (2, "accepted"),
    ]


# --- the 24-hour customer-service window, refused up front ----------------------------------


@pytest.mark.parametrize("channel_type", ["whatsapp_cloud", "facebook", "instagram"])
def test_free_text_outside_the_window_is_refused(account, make_inbox, channel_type):
    inbox = make_inbox(account, channel_type)
    with pytest.raises(OutsideServiceWindow):
        create(inbox, to="+15550001111")
    assert not inbox.messages.exists()
    assert not DBTaskResult.objects.filter(task_path="statuses.tasks.send_message").exists()


def test_window_closed_after_24_hours(wa_inbox, open_window):
    conversation = open_window(wa_inbox, WA_TO)
    conversation.last_inbound_at = timezone.now() - timedelta(hours=24, minutes=1)
    conversation.save()
    with pytest.raises(OutsideServiceWindow):
        create(wa_inbox)


def test_template_outside_the_window_is_allowed(wa_inbox):
    template = {"name": "order_update", "language": "en_US"}
    message = create(wa_inbox, content="", template=template)
    assert message.status == Status.QUEUED


def test_sms_has_no_window(twilio_inbox):
    assert create(twilio_inbox, to="+15558675310").status == Status.QUEUED
