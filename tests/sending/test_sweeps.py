"""Each sweep of statuses.sweeps, called directly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from statuses import services, sweeps
from statuses.machine import Status
from statuses.models import SendTry, StatusEvent
from statuses.providers.base import SendOutcome, SendResult, StatusUpdate
from tests.fakes.recorder import Reply

pytestmark = pytest.mark.django_db

SEND_TASK = "statuses.tasks.send_message"


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def accepted(message, provider_id, at=None):
    services.message_record_send_result(
        message_id=message.id,
        attempt=message.attempt,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id=provider_id),
        occurred_at=at,
    )
    message.refresh_from_db()


def tasks_for(message):
    return DBTaskResult.objects.filter(
        task_path=SEND_TASK, args_kwargs__args=[str(message.id), message.attempt]
    )


def enqueue(message, **fields):
    from statuses import tasks

    result = tasks.send_message.enqueue(str(message.id), message.attempt)
    DBTaskResult.objects.filter(id=result.id).update(**fields)


# --- 1. tries lost with their worker ----------------------------------------------------------


def test_lost_try_makes_the_message_unknown_not_resent(inbox, make_message):
    message = make_message(inbox, queued_at=ago(minutes=10))
    SendTry.objects.create(message=message, attempt=1, number=1, started_at=ago(minutes=5))
    fresh = make_message(inbox, to="+15550002222")
    SendTry.objects.create(message=fresh, attempt=1, number=1)

    assert sweeps.send_tries_recover() == 1

    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    assert message.error_code == ""  # unknown carries no error, the event keeps the reason
    event = StatusEvent.objects.get(message=message)
    assert (event.source, event.raw_status, event.error_code) == (
        "sweep",
        "sweep:lost",
        "worker_lost",
    )
    assert SendTry.objects.get(message=message).outcome == "lost"
    assert SendTry.objects.get(message=fresh).outcome == "in_flight"
    assert sweeps.queued_requeue() == 0  # never a blind resend
    # A late answer from a worker that was only slow still counts.
    accepted(message, "wamid.late")
    assert message.status == Status.SENT


def test_lost_try_on_an_idempotent_channel_is_sent_again(account, make_inbox, make_message):
    inbox = make_inbox(account, "line", channel_access_token="t")
    message = make_message(inbox, to="U1", queued_at=ago(minutes=10))
    SendTry.objects.create(message=message, attempt=1, number=1, started_at=ago(minutes=5))
    enqueue(message, status="RUNNING", started_at=ago(minutes=5))

    assert sweeps.send_tries_recover() == 1
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert sweeps.queued_requeue() == 1
    assert tasks_for(message).filter(status="READY").count() == 1
    assert tasks_for(message).filter(status="FAILED").count() == 1


# --- 2. queued messages without a task ---------------------------------------------------------


def test_requeue_only_queued_messages_whose_task_vanished(inbox, make_message, settings):
    settings.SEND_REQUEUE_AFTER = 60
    vanished = make_message(inbox, queued_at=ago(minutes=5))
    pending = make_message(inbox, to="+15550000001", queued_at=ago(minutes=5))
    enqueue(pending)
    deferred = make_message(inbox, to="+15550000002", queued_at=ago(minutes=5))
    enqueue(deferred, run_after=timezone.now() + timedelta(minutes=10))
    young = make_message(inbox, to="+15550000003")
    sent = make_message(inbox, to="+15550000004", queued_at=ago(minutes=5), status=Status.SENT)
    in_flight = make_message(inbox, to="+15550000005", queued_at=ago(minutes=5))
    SendTry.objects.create(message=in_flight, attempt=1, number=1)
    dead_worker = make_message(inbox, to="+15550000006", queued_at=ago(minutes=5))
    enqueue(dead_worker, status="RUNNING", started_at=ago(minutes=30))

    with CaptureQueriesContext(connection) as queries:
        assert sweeps.queued_requeue() == 2
    assert len(queries) <= 8  # a fixed number of statements, whatever the backlog

    assert tasks_for(vanished).filter(status="READY").count() == 1
    assert tasks_for(dead_worker).filter(status="READY").count() == 1
    assert tasks_for(dead_worker).get(status="FAILED").exception_class_path == sweeps.WORKER_LOST
    for message in (pending, deferred):
        assert tasks_for(message).count() == 1
    for message in (young, sent, in_flight):
        assert not tasks_for(message).exists()
    assert sweeps.queued_requeue() == 0


def campaign_in(inbox, status):
    from inbox.models import Campaign

    return Campaign.objects.create(
        account=inbox.account, inbox=inbox, name=f"{status} campaign", content="Hi", status=status
    )


@pytest.mark.parametrize("state", ["paused", "scheduled", "cancelled"])
def test_requeue_leaves_a_campaign_that_is_not_sending_alone(inbox, make_message, state):
    # A pause leaves the campaign's messages queued without tasks on purpose; its resume
    # enqueues them. The sweep must not churn tasks for them meanwhile.
    campaign = campaign_in(inbox, state)
    waiting = [
        make_message(inbox, to=f"+1555000010{n}", campaign=campaign, queued_at=ago(minutes=5))
        for n in range(3)
    ]

    assert sweeps.queued_requeue() == 0
    for message in waiting:
        assert not tasks_for(message).exists()


@pytest.mark.parametrize("state", ["running", "completed"])  # completed: a resend by hand
def test_requeue_sends_a_sending_campaigns_lost_message_again_as_bulk(inbox, make_message, state):
    from statuses import tasks

    campaign = campaign_in(inbox, state)
    lost = make_message(inbox, campaign=campaign, queued_at=ago(minutes=5))
    reply = make_message(inbox, to="+15550000009", queued_at=ago(minutes=5))

    assert sweeps.queued_requeue() == 2

    bulk = tasks_for(lost).get(status="READY")
    assert bulk.priority == tasks.CAMPAIGN_PRIORITY
    assert bulk.args_kwargs["kwargs"] == {"bulk": True}
    interactive = tasks_for(reply).get(status="READY")
    assert interactive.priority == tasks.send_message.priority
    assert interactive.priority > tasks.CAMPAIGN_PRIORITY
    assert interactive.args_kwargs["kwargs"] == {}


def test_requeue_does_not_duplicate_a_waiting_campaign_send(inbox, make_message):
    from statuses import tasks

    campaign = campaign_in(inbox, "running")
    waiting = make_message(inbox, campaign=campaign, queued_at=ago(minutes=5))
    tasks.send_enqueue_many([(str(waiting.id), 1)], priority=tasks.CAMPAIGN_PRIORITY)
    retried = make_message(
        inbox, to="+15550000008", campaign=campaign, queued_at=ago(minutes=5), attempt=2
    )
    # Attempt 1's task is still waiting; it will find nothing to do (a stale attempt).
    tasks.send_enqueue_many([(str(retried.id), 1)], priority=tasks.CAMPAIGN_PRIORITY)

    assert sweeps.queued_requeue() == 1  # only the attempt without a task of its own

    assert tasks_for(waiting).count() == 1
    assert tasks_for(retried).count() == 1  # attempt 2's, new
    assert sweeps.queued_requeue() == 0


def test_requeue_finds_a_lost_send_behind_a_long_queue(inbox, make_message, monkeypatch):
    # More waiting campaign sends, older than the lost reply, than a sweep's batch: the sweep
    # still finds the reply (the lost ones are picked in SQL, not among the oldest queued).
    from statuses import tasks

    monkeypatch.setattr(sweeps, "BATCH", 2)
    campaign = campaign_in(inbox, "running")
    waiting = [
        make_message(inbox, to=f"+1555000020{n}", campaign=campaign, queued_at=ago(minutes=10))
        for n in range(9)
    ]
    tasks.send_enqueue_many(
        [(str(m.id), m.attempt) for m in waiting], priority=tasks.CAMPAIGN_PRIORITY
    )
    reply = make_message(inbox, to="+15550000300", queued_at=ago(minutes=5))

    assert sweeps.queued_requeue() == 1
    assert tasks_for(reply).filter(status="READY").count() == 1


def test_requeue_statements_do_not_grow_with_the_waiting_sends(inbox, make_message):
    from statuses import tasks

    campaign = campaign_in(inbox, "running")

    def sweep_with_waiting(count, offset):
        waiting = [
            make_message(
                inbox, to=f"+1555{offset + n:07d}", campaign=campaign, queued_at=ago(minutes=5)
            )
            for n in range(count)
        ]
        tasks.send_enqueue_many(
            [(str(m.id), m.attempt) for m in waiting], priority=tasks.CAMPAIGN_PRIORITY
        )
        make_message(inbox, to=f"+1555{offset + count:07d}", queued_at=ago(minutes=5))
        with CaptureQueriesContext(connection) as queries:
            assert sweeps.queued_requeue() == 1
        return [query["sql"] for query in queries]

    few = sweep_with_waiting(2, 0)
    many = sweep_with_waiting(40, 100)

    assert len(many) == len(few)
    # The waiting tasks are matched in the database, never read into Python.
    table = DBTaskResult._meta.db_table
    for sql in many:
        assert f'"{table}"."args_kwargs"' not in sql.split(" FROM ")[0]


# --- 3. reconcile unknown ----------------------------------------------------------------------


def test_unknown_twilio_message_is_asked_about(account, make_inbox, make_message, provider):
    sid = "AC" + "2" * 32
    inbox = make_inbox(
        account,
        "twilio_sms",
        account_sid=sid,
        auth_token="tok",
        from_number="+15017250604",
        api_base_url=provider.url,
    )
    message = make_message(
        inbox,
        provider_message_id="SM" + "a" * 32,
        status=Status.UNKNOWN,
        status_updated_at=ago(minutes=5),
    )
    no_sid = make_message(
        inbox, to="+15550003333", status=Status.UNKNOWN, status_updated_at=ago(minutes=5)
    )
    provider.queue(Reply(200, {"sid": "SM" + "a" * 32, "status": "delivered", "error_code": None}))

    assert sweeps.unknown_reconcile() == 1

    (request,) = provider.requests
    assert request.method == "GET"
    assert request.path == f"/2010-04-01/Accounts/{sid}/Messages/SM{'a' * 32}.json"
    assert request.headers["authorization"].startswith("Basic ")
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    no_sid.refresh_from_db()
    assert no_sid.status == Status.UNKNOWN  # its status callback (with ?tm=) will tell


def test_unknown_twilio_failure_carries_the_error(account, make_inbox, make_message, provider):
    inbox = make_inbox(
        account,
        "twilio_sms",
        account_sid="AC" + "3" * 32,
        auth_token="tok",
        from_number="+1",
        api_base_url=provider.url,
    )
    message = make_message(
        inbox, provider_message_id="SMx", status=Status.UNKNOWN, status_updated_at=ago(minutes=5)
    )
    provider.queue(
        Reply(200, {"status": "undelivered", "error_code": 30003, "error_message": "Unreachable"})
    )
    sweeps.unknown_reconcile()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "30003")
    assert message.error_title == "Unreachable destination handset"


# --- 4. expire ---------------------------------------------------------------------------------


def test_undelivered_messages_expire_after_their_channel_ttl(account, make_inbox, make_message):
    whatsapp = make_inbox(account, "whatsapp_cloud")
    sms = make_inbox(account, "twilio_sms")
    telegram = make_inbox(account, "telegram")
    old_wa = make_message(whatsapp, queued_at=ago(days=31), provider_message_id="wamid.old")
    accepted(old_wa, "wamid.old", at=ago(days=31))
    young_wa = make_message(whatsapp, to="+15550000009", queued_at=ago(days=20))
    accepted(young_wa, "wamid.young")
    delivered = make_message(
        whatsapp, to="+15550000010", queued_at=ago(days=40), status=Status.DELIVERED
    )
    old_sms_unknown = make_message(sms, queued_at=ago(days=4), status=Status.UNKNOWN)
    old_telegram = make_message(telegram, to="42", queued_at=ago(days=90))
    accepted(old_telegram, "42:1")

    assert sweeps.messages_expire() == 2

    for message in (old_wa, young_wa, delivered, old_sms_unknown, old_telegram):
        message.refresh_from_db()
    assert old_wa.status == Status.EXPIRED
    assert (old_wa.error_code, old_wa.error_title) == ("expired", "Not delivered in time")
    assert old_wa.error_detail == "No delivery report within 30 days."
    assert old_sms_unknown.status == Status.EXPIRED
    assert young_wa.status == Status.SENT
    assert delivered.status == Status.DELIVERED
    assert old_telegram.status == Status.SENT  # Telegram never reports delivery
    assert sweeps.messages_expire() == 0
    # A late delivery still wins over expiry (merge rule).
    services.status_updates_apply(
        inbox=whatsapp,
        updates=[
            StatusUpdate(
                provider_message_id="wamid.old",
                status=Status.DELIVERED,
                raw_status="delivered",
                occurred_at=timezone.now(),
                dedupe_key="wamid.old:delivered",
            )
        ],
    )
    old_wa.refresh_from_db()
    assert old_wa.status == Status.DELIVERED


# --- 5. parked → unmatched ---------------------------------------------------------------------


def test_parked_statuses_become_unmatched_after_the_retry_window(account, make_inbox):
    whatsapp = make_inbox(account, "whatsapp_cloud")
    bandwidth = make_inbox(account, "bandwidth_sms")
    twilio = make_inbox(account, "twilio_sms")

    def park(inbox, key, age):
        return StatusEvent.objects.create(
            inbox=inbox,
            provider_message_id=key,
            status=Status.DELIVERED,
            raw_status="delivered",
            occurred_at=age,
            received_at=age,
            source="webhook",
            outcome="parked",
            dedupe_key=key,
        )

    wa_2d, wa_8d = park(whatsapp, "wa2", ago(days=2)), park(whatsapp, "wa8", ago(days=8))
    bw_2d, bw_1h = park(bandwidth, "bw2", ago(days=2)), park(bandwidth, "bw1", ago(hours=1))
    tw_4d, tw_2d = park(twilio, "tw4", ago(days=4)), park(twilio, "tw2", ago(days=2))

    assert sweeps.parked_expire() == 3

    outcomes = {e.dedupe_key: e.outcome for e in StatusEvent.objects.all()}
    assert outcomes == {
        "wa2": "parked",
        "wa8": "unmatched",
        "bw2": "unmatched",
        "bw1": "parked",
        "tw4": "unmatched",
        "tw2": "parked",
    }
    del wa_2d, wa_8d, bw_2d, bw_1h, tw_4d, tw_2d


def test_run_all_reports_each_sweep(inbox):
    assert sweeps.run_all() == {
        "send_tries_recover": 0,
        "queued_requeue": 0,
        "unknown_reconcile": 0,
        "messages_expire": 0,
        "parked_expire": 0,
        "widget_contacts_expire": 0,
        "deliveries_prune": 0,
        "templates_sync_due": 0,
        "campaigns_sweep": 0,
    }
