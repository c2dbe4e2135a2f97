"""The status write path on the real database: dedupe, merge, parking, attempts, watermarks."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox.models import Message
from statuses import correlation, services
from statuses.machine import UNRECOGNIZED, Status
from statuses.models import StatusEvent
from statuses.providers.base import SendOutcome, SendResult, StatusUpdate, Watermark

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db(transaction=False)


def upd(pid, status, minute=0, code="", corr="", raw=None):
    return StatusUpdate(
        provider_message_id=pid,
        status=status,
        raw_status=raw or status,
        occurred_at=T0 + timedelta(minutes=minute),
        dedupe_key=f"{pid}:{raw or status}:{code}",
        correlation_id=corr,
        error_code=code,
        error_title=f"title {code}" if code else "",
    )


def test_out_of_order_batch_converges(inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.1", created_at=T0)
    result = services.status_updates_apply(
        inbox=inbox,
        updates=[
            upd("wamid.1", "read", 3),
            upd("wamid.1", "sent", 1),
            upd("wamid.1", "delivered", 2),
        ],
    )
    message.refresh_from_db()
    assert message.status == Status.READ
    assert message.sent_at == T0 + timedelta(minutes=1)
    assert message.delivered_at == T0 + timedelta(minutes=2)
    assert message.read_at == T0 + timedelta(minutes=3)
    assert message.version == 2
    assert result.stored == 3 and len(result.changes) == 1


def test_late_events_never_downgrade(inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.2", created_at=T0)
    services.status_updates_apply(inbox=inbox, updates=[upd("wamid.2", "read", 5)])
    result = services.status_updates_apply(
        inbox=inbox, updates=[upd("wamid.2", "sent", 1), upd("wamid.2", "failed", 6, "131026")]
    )
    message.refresh_from_db()
    assert message.status == Status.READ
    assert message.error_code == ""
    assert message.sent_at == T0 + timedelta(minutes=1)  # a timestamp still fills in
    assert result.changes and result.changes[0].status == Status.READ
    failed = StatusEvent.objects.get(message=message, status=Status.FAILED)
    assert failed.outcome == StatusEvent.Outcome.RECORDED and failed.error_code == "131026"


def test_duplicates_are_stored_once_and_counted(inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.3")
    first = services.status_updates_apply(
        inbox=inbox, updates=[upd("wamid.3", "delivered", 1), upd("wamid.3", "delivered", 1)]
    )
    again = services.status_updates_apply(inbox=inbox, updates=[upd("wamid.3", "delivered", 1)])
    event = StatusEvent.objects.get(message=message)
    assert event.duplicate_count == 2
    assert (first.stored, first.duplicates) == (1, 1)
    assert (again.stored, again.duplicates, again.changes) == (0, 1, [])
    message.refresh_from_db()
    assert message.version == 2  # the duplicate changed nothing


@pytest.mark.requires_postgres("the events and the messages in one statement are PostgreSQL's")
def test_a_status_change_stores_its_event_and_writes_its_message_in_one_statement(
    inbox, make_message
):
    message = make_message(inbox, provider_message_id="wamid.one")
    with CaptureQueriesContext(connection) as queries:
        services.status_updates_apply(inbox=inbox, updates=[upd("wamid.one", "delivered", 1)])
    statements = [q["sql"] for q in queries.captured_queries]
    # The message by provider id, its lock, the attempt's stored events, then one statement.
    assert len(statements) == 4, statements
    assert "INSERT INTO statuses_statusevent" in statements[-1]
    assert "UPDATE inbox_message" in statements[-1]
    message.refresh_from_db()
    assert (message.status, message.version) == (Status.DELIVERED, 2)
    assert StatusEvent.objects.get(message=message).outcome == StatusEvent.Outcome.APPLIED


def test_an_event_the_merge_counted_but_stored_elsewhere_does_not_write_the_message(
    inbox, make_message
):
    """The merge counts a new event only if the attempt has not stored its key; if the key is
    stored elsewhere in the inbox (here: parked before the message had its provider id, and
    not adopted), the insert does not store it, and the message must not be written as if it
    had: the merge is done again from the database, which has no such event for it."""
    message = make_message(inbox, provider_message_id="wamid.clash")
    update = upd("wamid.clash", "delivered", 1)
    StatusEvent.objects.create(
        inbox=inbox,
        provider_message_id="wamid.clash",
        status=update.status,
        raw_status=update.raw_status,
        occurred_at=update.occurred_at,
        source=StatusEvent.Source.WEBHOOK,
        outcome=StatusEvent.Outcome.PARKED,
        dedupe_key=update.dedupe_key,
    )

    result = services.status_updates_apply(inbox=inbox, updates=[update])

    message.refresh_from_db()
    assert (message.status, message.version) == (Status.QUEUED, 1)
    assert (result.stored, result.duplicates, result.changes) == (0, 1, [])
    assert StatusEvent.objects.get(dedupe_key=update.dedupe_key).duplicate_count == 1


def test_unknown_status_is_kept_and_changes_nothing(inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.4")
    result = services.status_updates_apply(
        inbox=inbox, updates=[upd("wamid.4", UNRECOGNIZED, 1, raw="warning")]
    )
    message.refresh_from_db()
    assert message.status == Status.QUEUED and message.version == 1
    assert result.stored == 1
    assert StatusEvent.objects.get(message=message).raw_status == "warning"


def test_unknown_provider_id_is_parked_then_applied_by_the_send_response(inbox, make_message):
    message = make_message(inbox, created_at=T0)
    parked = services.status_updates_apply(
        inbox=inbox, updates=[upd("wamid.early", "delivered", 2), upd("wamid.early", "read", 3)]
    )
    assert parked.parked == 2
    assert StatusEvent.objects.filter(message__isnull=True, outcome="parked").count() == 2
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id="wamid.early"),
        occurred_at=T0 + timedelta(minutes=1),
    )
    message.refresh_from_db()
    assert message.status == Status.READ
    assert message.provider_message_id == "wamid.early"
    assert message.sent_at == T0 + timedelta(minutes=1)
    assert not StatusEvent.objects.filter(message__isnull=True).exists()


def test_correlation_id_rescues_a_lost_send_response(inbox, make_message):
    message = make_message(inbox)
    corr = correlation.make(message.id, 1)
    services.status_updates_apply(
        inbox=inbox, updates=[upd("wamid.lost", "delivered", 2, corr=corr)]
    )
    message.refresh_from_db()
    assert message.status == Status.DELIVERED
    assert message.provider_message_id == "wamid.lost"


def test_rejected_send_fails_with_the_provider_error(inbox, make_message):
    message = make_message(inbox)
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.REJECTED, error_code="131026", error_title="Undeliverable"),
    )
    message.refresh_from_db()
    assert (message.status, message.error_code, message.error_title) == (
        Status.FAILED,
        "131026",
        "Undeliverable",
    )
    assert message.failed_at is not None


def test_resend_starts_a_new_attempt_and_ignores_the_old_provider_id(inbox, make_message):
    message = make_message(inbox, provider_message_id="wamid.old")
    services.status_updates_apply(inbox=inbox, updates=[upd("wamid.old", "failed", 1, "131000")])
    message.refresh_from_db()
    assert message.status == Status.FAILED

    services.message_start_attempt(message=message)
    message.refresh_from_db()
    assert (message.status, message.attempt, message.provider_message_id) == (
        Status.QUEUED,
        2,
        None,
    )

    services.message_record_send_result(
        message_id=message.id,
        attempt=2,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id="wamid.new"),
    )
    # A late status for the first attempt's id is recorded but ignored.
    late = services.status_updates_apply(inbox=inbox, updates=[upd("wamid.old", "read", 9)])
    message.refresh_from_db()
    assert message.status == Status.SENT and message.attempt == 2
    assert late.stale == 1 and not late.changes
    assert (
        StatusEvent.objects.filter(message=message, attempt=1).count() == 2
    )  # failed + the stale read


def test_send_result_for_an_old_attempt_is_stale(inbox, make_message):
    message = make_message(inbox, status=Status.FAILED)
    services.message_start_attempt(message=message)
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id="x"),
    )
    message.refresh_from_db()
    assert message.status == Status.QUEUED and message.provider_message_id is None


def test_watermark_marks_every_earlier_outgoing_message_read(inbox, make_message):
    messages = [
        make_message(inbox, provider_message_id=f"m{i}", created_at=T0 + timedelta(minutes=i))
        for i in range(5)
    ]
    services.status_updates_apply(inbox=inbox, updates=[upd(f"m{i}", "sent", i) for i in range(5)])
    failed = make_message(inbox, provider_message_id="mf", created_at=T0)
    services.status_updates_apply(inbox=inbox, updates=[upd("mf", "failed", 0, "x")])
    later = make_message(inbox, provider_message_id="late", created_at=T0 + timedelta(hours=1))
    services.status_updates_apply(inbox=inbox, updates=[upd("late", "sent", 60)])

    result = services.watermarks_apply(
        inbox=inbox,
        watermarks=[
            Watermark(
                contact_address="+16505076520",
                status=Status.READ,
                up_to=T0 + timedelta(minutes=10),
                occurred_at=T0 + timedelta(minutes=11),
                dedupe_key="psid:read:wm1",
                raw_status="read",
            )
        ],
    )
    assert len(result.changes) == 5
    for message in messages:
        message.refresh_from_db()
        assert message.status == Status.READ
        assert message.read_at == T0 + timedelta(minutes=11)
    failed.refresh_from_db()
    later.refresh_from_db()
    assert failed.status == Status.FAILED  # a watermark is no evidence a failed message arrived
    assert later.status == Status.SENT


def _batch(n, prefix):
    return [upd(f"{prefix}{i}", status, i) for i in range(n) for status in ("delivered", "read")]


@pytest.mark.requires_postgres(
    "the constant statement count comes from PostgreSQL's one-statement UPDATE … FROM unnest(); SQLite (embedded mode) writes changed messages row by row"
)
@pytest.mark.parametrize("size", [1, 10])
def test_batch_query_count_is_constant(inbox, make_message, size):
    for i in range(size * 20):
        make_message(inbox, provider_message_id=f"q{i}")
    with CaptureQueriesContext(connection) as small:
        services.status_updates_apply(inbox=inbox, updates=_batch(size, "q"))
    with CaptureQueriesContext(connection) as large:
        services.status_updates_apply(inbox=inbox, updates=_batch(size * 20, "q"))
    assert Message.objects.filter(status=Status.READ).count() == size * 20
    assert len(large) == len(small) <= 12, [q["sql"][:120] for q in large]


@pytest.mark.requires_postgres(
    "the constant statement count comes from PostgreSQL's one-statement UPDATE … FROM unnest(); SQLite (embedded mode) writes changed messages row by row"
)
def test_watermark_query_count_does_not_grow(inbox, make_message):
    def mark(key):
        return [
            Watermark(
                contact_address="+16505076520",
                status=Status.READ,
                up_to=T0 + timedelta(days=1),
                occurred_at=T0 + timedelta(days=1),
                dedupe_key=key,
                raw_status="read",
            )
        ]

    def sent(n, prefix):
        for i in range(n):
            make_message(inbox, provider_message_id=f"{prefix}{i}", created_at=T0)
        services.status_updates_apply(
            inbox=inbox, updates=[upd(f"{prefix}{i}", "sent") for i in range(n)]
        )

    sent(3, "a")
    with CaptureQueriesContext(connection) as small:
        services.watermarks_apply(inbox=inbox, watermarks=mark("w1"))
    sent(1000, "b")
    with CaptureQueriesContext(connection) as large:
        result = services.watermarks_apply(inbox=inbox, watermarks=mark("w2"))
    assert len(result.changes) == 1000
    assert len(large) == len(small)


def test_watermark_covers_the_message_it_names_although_our_sent_at_is_later(inbox, make_message):
    """Meta's watermark is its own timestamp of the newest message read: after our request went
    out, before its answer came back (our sent_at)."""
    from statuses.models import SendTry

    def sent(message, request_at, answer_at, pid):
        SendTry.objects.create(
            message=message,
            attempt=1,
            number=1,
            outcome=SendTry.Outcome.ACCEPTED,
            started_at=request_at,
        )
        services.message_record_send_result(
            message_id=message.id,
            attempt=1,
            result=SendResult(SendOutcome.ACCEPTED, provider_message_id=pid),
            occurred_at=answer_at,
        )

    covered = make_message(inbox, created_at=T0)
    sent(covered, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3), "mid.1")
    later = make_message(inbox, created_at=T0 + timedelta(seconds=1))
    sent(later, T0 + timedelta(seconds=5), T0 + timedelta(seconds=6), "mid.2")

    services.watermarks_apply(
        inbox=inbox,
        watermarks=[
            Watermark(
                contact_address="+16505076520",
                status=Status.READ,
                up_to=T0 + timedelta(seconds=2),  # Meta's time of the first message
                occurred_at=T0 + timedelta(seconds=60),
                dedupe_key="psid:read:2000",
                raw_status="read",
            )
        ],
    )
    covered.refresh_from_db()
    later.refresh_from_db()
    assert covered.status == Status.READ
    assert later.status == Status.SENT
