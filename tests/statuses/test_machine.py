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


def definition(events):
    """DESIGN §3.2 written over the *set* of events, independently of machine.merge."""
    distinct = set(events)
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
        times = [e.occurred_at for e in distinct if e.status in names]
        return min(times) if times else None

    source = None
    if status in ("failed", "expired"):
        source = min(
            (e for e in distinct if e.status == status),
            key=lambda e: (e.occurred_at, e.error_code, e.error_title, e.error_detail),
        )
    delivered = earliest("delivered") or earliest("read")
    return (
        status,
        earliest("sent", "received"),
        delivered,
        earliest("read"),
        source.occurred_at if source else None,
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
