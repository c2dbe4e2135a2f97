"""The merge rule (DESIGN §3.2), cell by cell and by property over permutations."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statuses.catalogue import CHANNELS, is_terminal
from statuses.machine import UNRECOGNIZED, Event, Status, Tick, merge, tick_for

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ev(status, minute=0, code=""):
    return Event(status, T0 + timedelta(minutes=minute), error_code=code, error_title=code)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.QUEUED),
        (["queued"], Status.QUEUED),
        (["unknown"], Status.UNKNOWN),
        (["sent"], Status.SENT),
        (["sent", "received"], Status.RECEIVED),
        (["delivered"], Status.DELIVERED),
        (["read"], Status.READ),
        (["read", "delivered", "sent"], Status.READ),
        (["sent", "failed"], Status.FAILED),
        (["failed", "sent"], Status.FAILED),
        (["failed", "delivered"], Status.DELIVERED),  # delivery evidence beats failure
        (["delivered", "failed"], Status.DELIVERED),
        (["read", "failed"], Status.READ),
        (["received", "failed"], Status.FAILED),  # received is below delivered
        (["expired"], Status.EXPIRED),
        (["sent", "expired"], Status.EXPIRED),
        (["failed", "expired"], Status.FAILED),  # failed wins over expired
        (["delivered", "expired"], Status.DELIVERED),
        (["delivered", "deleted"], Status.DELETED),
        (["read", "deleted", "failed"], Status.DELETED),
        (["queued", "unknown"], Status.UNKNOWN),
        (["unknown", "sent"], Status.SENT),
        ([UNRECOGNIZED], Status.QUEUED),
        (["sent", UNRECOGNIZED], Status.SENT),
    ],
)
def test_status_cells(statuses, expected):
    assert merge([ev(s, i) for i, s in enumerate(statuses)]).status == expected


def test_read_implies_delivered_time():
    merged = merge([ev("sent", 0), ev("read", 5)])
    assert merged.delivered_at == T0 + timedelta(minutes=5)
    assert merged.read_at == T0 + timedelta(minutes=5)


def test_delivered_time_kept_when_delivered_event_exists():
    merged = merge([ev("read", 5), ev("delivered", 7)])
    assert merged.delivered_at == T0 + timedelta(minutes=7)


def test_earliest_timestamp_wins_and_duplicates_do_not_matter():
    merged = merge([ev("delivered", 9), ev("delivered", 3), ev("delivered", 3)])
    assert merged.delivered_at == T0 + timedelta(minutes=3)


def test_failure_carries_earliest_error_and_time():
    merged = merge([ev("failed", 4, "131049"), ev("failed", 2, "131026"), ev("sent", 1)])
    assert merged.status == Status.FAILED
    assert merged.error_code == "131026"
    assert merged.failed_at == T0 + timedelta(minutes=2)


def test_error_hidden_when_delivery_wins():
    merged = merge([ev("failed", 1, "131026"), ev("delivered", 2)])
    assert (merged.error_code, merged.failed_at) == ("", None)


@pytest.mark.parametrize(
    ("status", "tick"),
    [
        ("queued", Tick.PENDING),
        ("unknown", Tick.PENDING),
        ("sent", Tick.SINGLE),
        ("received", Tick.SINGLE),
        ("delivered", Tick.DOUBLE),
        ("read", Tick.BLUE),
        ("failed", Tick.FAILED),
        ("expired", Tick.FAILED),
        ("deleted", Tick.DOUBLE),
    ],
)
def test_ticks(status, tick):
    assert tick_for(status) == tick


@pytest.mark.parametrize(
    ("channel_type", "status", "terminal"),
    [
        ("twilio_sms", "delivered", True),
        ("twilio_sms", "sent", False),
        ("line", "delivered", True),
        ("telegram", "sent", True),
        ("telegram", "queued", False),
        ("whatsapp_cloud", "delivered", False),
        ("whatsapp_cloud", "read", True),
        ("email", "sent", True),
        ("instagram", "sent", False),  # read can still come
        ("tiktok", "read", True),
        ("viber", "failed", True),
        ("web_widget", "expired", True),
        ("api", "deleted", True),
    ],
)
def test_is_terminal_per_channel(channel_type, status, terminal):
    assert is_terminal(status, channel_type) is terminal


def test_catalogue_matches_design_table():
    rows = {
        ct: "".join("Y" if f else "-" for f in c.capabilities.values())
        for ct, c in CHANNELS.items()
    }
    assert rows == {
        "web_widget": "YYYY",
        "api": "YYYY",
        "whatsapp_cloud": "YYYY",
        "twilio_whatsapp": "YYYY",
        "whatsapp_360dialog": "YYYY",
        "facebook": "YYYY",
        "tiktok": "Y-YY",
        "twilio_sms": "YY-Y",
        "bandwidth_sms": "YY-Y",
        "instagram": "Y-YY",
        "telegram": "Y--Y",
        "line": "YY-Y",
        "email": "Y--Y",
        "viber": "YYYY",
    }


# --- property: every permutation of any multiset equals the set-based definition ------------

ALL_STATUSES = [*Status.values, UNRECOGNIZED]
RANK = {"queued": 0, "unknown": 1, "sent": 2, "received": 3, "delivered": 4, "read": 5}

events_strategy = st.lists(
    st.builds(
        Event,
        status=st.sampled_from(ALL_STATUSES),
        occurred_at=st.integers(0, 50).map(lambda m: T0 + timedelta(minutes=m)),
        error_code=st.sampled_from(["", "131026", "30003"]),
        error_title=st.sampled_from(["", "x"]),
    ),
    max_size=12,
)


def definition(events, created_at=None):
    """DESIGN §3.2 and §5.1 written over the *set* of events, independently of machine.merge."""
    distinct = set(events)

    def time(e):  # a provider clock > 5 min ahead of our receipt: the time received
        late = e.received_at is not None and e.occurred_at - e.received_at > timedelta(minutes=5)
        return e.received_at if late else e.occurred_at

    statuses = {e.status for e in distinct}
    progress = [s for s in statuses if s in RANK]
    best = max(progress, key=RANK.get, default="queued")
    if "deleted" in statuses:
        status = "deleted"
    elif RANK[best] >= RANK["delivered"]:
        status = best
    elif "failed" in statuses:
        status = "failed"
    elif "expired" in statuses:
        status = "expired"
    else:
        status = best

    def earliest(*names):
        times = [time(e) for e in distinct if e.status in names]
        return min(times) if times else None

    def after(moment, *floors):  # monotonic: never before the previous stage
        floor = next((f for f in floors if f is not None), None)
        return moment if moment is None or floor is None else max(moment, floor)

    source = None
    if status in ("failed", "expired"):
        source = min(
            (e for e in distinct if e.status == status),
            key=lambda e: (time(e), e.error_code, e.error_title, e.error_detail),
        )
    sent = after(earliest("sent", "received"), created_at)
    delivered = after(earliest("delivered") or earliest("read"), sent, created_at)
    read = after(earliest("read"), delivered, sent, created_at)
    failed = after(time(source), sent, created_at) if source else None
    return (
        status,
        sent,
        delivered,
        read,
        failed,
        source.error_code if source else "",
        source.error_title if source else "",
    )


def observed(merged):
    return (
        merged.status,
        merged.sent_at,
        merged.delivered_at,
        merged.read_at,
        merged.failed_at,
        merged.error_code,
        merged.error_title,
    )


@settings(max_examples=400, deadline=None)
@given(events=events_strategy, data=st.data())
def test_any_permutation_with_duplicates_matches_the_definition(events, data):
    duplicated = events + data.draw(
        st.lists(st.sampled_from(events), max_size=6) if events else st.just([])
    )
    shuffled = data.draw(st.permutations(duplicated))
    assert observed(merge(shuffled)) == definition(events)


# --- monotonic lifecycle timestamps (DESIGN §5.1) ---------------------------------------------

CREATED = T0 + timedelta(minutes=20)

timed_events = st.lists(
    st.builds(
        Event,
        status=st.sampled_from(ALL_STATUSES),
        occurred_at=st.integers(-60 * 24 * 365 * 10, 60).map(lambda m: T0 + timedelta(minutes=m)),
        error_code=st.sampled_from(["", "131026"]),
        received_at=st.one_of(
            st.none(), st.integers(0, 40).map(lambda m: T0 + timedelta(minutes=m))
        ),
    ),
    max_size=10,
)


@settings(max_examples=400, deadline=None)
@given(events=timed_events, created=st.sampled_from([None, T0, CREATED]), data=st.data())
def test_timestamps_are_monotonic_and_order_independent(events, created, data):
    duplicated = events + data.draw(
        st.lists(st.sampled_from(events), max_size=4) if events else st.just([])
    )
    merged = merge(data.draw(st.permutations(duplicated)), created_at=created)
    assert observed(merged) == definition(events, created_at=created)
    chain = [created, merged.sent_at, merged.delivered_at, merged.read_at]
    present = [moment for moment in chain if moment is not None]
    assert present == sorted(present)
    floor = merged.sent_at or created
    if merged.failed_at is not None and floor is not None:
        assert merged.failed_at >= floor
    if events and all(e.received_at for e in events):
        # Every time came from a clock no more than 5 minutes ahead of our own (or is a floor).
        bound = max(e.received_at for e in events) + timedelta(minutes=5)
        bound = max(bound, created) if created else bound
        stamps = (merged.sent_at, merged.delivered_at, merged.read_at, merged.failed_at)
        assert all(moment <= bound for moment in stamps if moment is not None)


def test_a_2016_provider_time_on_a_2026_message_is_the_creation_time():
    created = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    merged = merge([Event("sent", datetime(2016, 3, 1, 9, 0, tzinfo=UTC))], created_at=created)
    assert merged.sent_at == created


def test_delivered_before_sent_is_delivered_when_sent():
    sent = datetime(2026, 8, 12, 15, 30, tzinfo=UTC)
    merged = merge(
        [Event("sent", sent), Event("delivered", sent - timedelta(days=4 * 365))],
        created_at=sent - timedelta(seconds=1),
    )
    assert (merged.sent_at, merged.delivered_at) == (sent, sent)


def test_read_never_precedes_delivered_and_failure_never_precedes_the_send():
    sent = T0 + timedelta(minutes=10)
    merged = merge([ev("sent", 10), ev("delivered", 12), ev("read", 11)], created_at=T0)
    assert (merged.sent_at, merged.delivered_at, merged.read_at) == (
        sent,
        T0 + timedelta(minutes=12),
        T0 + timedelta(minutes=12),
    )
    failed = merge([ev("sent", 10), ev("failed", 5, code="30003")], created_at=T0)
    assert failed.failed_at == sent


def test_a_provider_time_more_than_five_minutes_ahead_is_the_time_received():
    received = T0 + timedelta(minutes=1)
    ahead = Event("delivered", received + timedelta(minutes=5, seconds=1), received_at=received)
    within = Event("read", received + timedelta(minutes=5), received_at=received)
    merged = merge([Event("sent", T0), ahead, within], created_at=T0)
    assert merged.delivered_at == received  # the wrong clock's time replaced
    assert merged.read_at == received + timedelta(minutes=5)  # within tolerance: kept
    assert ahead.occurred_at == received + timedelta(minutes=5, seconds=1)  # the event is raw
