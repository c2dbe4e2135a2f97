"""GET /api/v1/analytics/delivery (DESIGN §15) over a known mix of statuses and provider times.

Expected percentiles are computed here independently with ``statistics.quantiles(method=
"inclusive")`` (the same linear interpolation as PostgreSQL's ``percentile_cont``).
"""

from __future__ import annotations

import csv
import io
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox.models import Message

T0 = datetime(2026, 1, 5, tzinfo=UTC)
URL = "/api/v1/analytics/delivery"
PERIOD = "since=2026-01-05T00:00:00Z&until=2026-01-08T00:00:00Z"

# WhatsApp: (status, delivered after ms, read after ms, error code, created on day)
WHATSAPP = [
    ("read", 1000, 60_000, "", 0),
    ("read", 2000, 120_000, "", 0),
    ("read", 3000, 30_000, "", 1),
    ("read", 4000, 90_000, "", 1),
    ("read", 10_000, 600_000, "", 1),
    ("delivered", 500, None, "", 0),
    ("delivered", 1500, None, "", 0),
    ("delivered", 2500, None, "", 1),
    ("sent", None, None, "", 0),
    ("sent", None, None, "", 1),
    ("queued", None, None, "", 0),
    ("failed", None, None, "131047", 0),
    ("failed", None, None, "131047", 1),
    ("failed", None, None, "130429", 1),
    ("expired", None, None, "expired", 1),
]
SMS = [
    ("delivered", 200, None, "", 0),
    ("delivered", 400, None, "", 0),
    ("delivered", 800, None, "", 2),
    ("delivered", 1600, None, "", 2),
    ("failed", None, None, "30003", 2),
]


def expected_percentiles(values):
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    if len(values) == 1:
        return {"p50": values[0], "p90": values[0], "p99": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


def assert_percentiles(actual, values):
    expected = expected_percentiles([float(v) for v in values])
    for name, value in expected.items():
        if value is None:
            assert actual[name] is None
        else:
            assert actual[name] == pytest.approx(value, abs=0.01), name


def _create(make_message, inbox, rows, start_minute=0):
    created = []
    for i, (status, deliver_ms, read_ms, code, day) in enumerate(rows):
        created_at = T0 + timedelta(days=day, hours=10, minutes=start_minute + i)
        sent_at = None if status == "queued" else created_at + timedelta(seconds=1)
        fields = {"status": status, "created_at": created_at, "sent_at": sent_at}
        if deliver_ms is not None:
            fields["delivered_at"] = sent_at + timedelta(milliseconds=deliver_ms)
        if read_ms is not None:
            fields["read_at"] = sent_at + timedelta(milliseconds=read_ms)
        if status in ("failed", "expired"):
            fields.update(error_code=code, failed_at=created_at + timedelta(seconds=2))
        created.append(make_message(inbox, to=f"+1650555{i:04d}", **fields))
    return created


@pytest.fixture
def mix(account, other_account, inbox, sms_inbox, make_inbox, make_message):
    _create(make_message, inbox, WHATSAPP)
    _create(make_message, sms_inbox, SMS, start_minute=30)
    # Not counted: an incoming message, one created before `since`, another account's messages.
    incoming = make_message(inbox, to="+16505550999", status="read", created_at=T0)
    Message.objects.filter(pk=incoming.pk).update(direction=Message.Direction.INCOMING)
    make_message(inbox, to="+16505550998", status="failed", created_at=T0 - timedelta(seconds=1))
    other_inbox = make_inbox(other_account)
    _create(make_message, other_inbox, [("delivered", 7, None, "", 0)] * 3)
    return {"inbox": inbox, "sms": sms_inbox, "other_inbox": other_inbox}


def _deliver_times(rows):
    return sorted(r[1] for r in rows if r[1] is not None)


def _read_times(rows):
    return sorted(r[2] for r in rows if r[2] is not None)


def test_totals_exact_counts_rates_and_percentiles(client, mix):
    response = client.get(f"{URL}?{PERIOD}")
    assert response.status_code == 200, response.content
    body = response.json()
    totals = body["totals"]
    assert body["since"] == "2026-01-05T00:00:00Z"
    assert body["until"] == "2026-01-08T00:00:00Z"
    rows = WHATSAPP + SMS
    assert totals["total"] == 20
    assert totals["by_status"] == {
        "QUEUED": 1,
        "UNKNOWN": 0,
        "SENT": 2,
        "RECEIVED": 0,
        "DELIVERED": 7,
        "READ": 5,
        "FAILED": 4,
        "EXPIRED": 1,
        "DELETED": 0,
    }
    assert totals["delivered_rate"] == pytest.approx(12 / 20)
    assert totals["read_rate"] == pytest.approx(5 / 20)
    assert totals["failed_rate"] == pytest.approx(5 / 20)
    assert_percentiles(totals["time_to_deliver_ms"], _deliver_times(rows))
    assert_percentiles(totals["time_to_read_ms"], _read_times(rows))
    top = [(e["channel_type"], e["code"], e["count"]) for e in totals["top_errors"]]
    assert top[0] == ("whatsapp_cloud", "131047", 2)
    assert sorted(top[1:]) == [
        ("twilio_sms", "30003", 1),
        ("whatsapp_cloud", "130429", 1),
        ("whatsapp_cloud", "expired", 1),
    ]
    by_code = {e["code"]: e for e in totals["top_errors"]}
    assert by_code["131047"]["title"] == "Re-engagement message"
    assert by_code["131047"]["hint"]
    assert by_code["131047"]["resend_helps"] is False
    assert by_code["130429"]["resend_helps"] is True
    assert by_code["expired"]["title"] == "Not delivered in time"
    assert by_code["expired"]["resend_helps"] is True


def test_group_by_channel(client, mix):
    body = client.get(f"{URL}?{PERIOD}&group_by=channel").json()
    groups = {g["key"]: g for g in body["groups"]}
    assert list(groups) == ["WHATSAPP", "SMS"]  # biggest first
    wa, sms = groups["WHATSAPP"], groups["SMS"]
    assert wa["total"] == 15 and sms["total"] == 5
    assert wa["delivered_rate"] == pytest.approx(8 / 15)
    assert wa["failed_rate"] == pytest.approx(4 / 15)
    assert sms["delivered_rate"] == pytest.approx(4 / 5)
    assert sms["read_rate"] == 0
    assert_percentiles(wa["time_to_deliver_ms"], _deliver_times(WHATSAPP))
    assert_percentiles(sms["time_to_deliver_ms"], _deliver_times(SMS))
    assert_percentiles(wa["time_to_read_ms"], _read_times(WHATSAPP))
    assert_percentiles(sms["time_to_read_ms"], [])
    assert [e["code"] for e in sms["top_errors"]] == ["30003"]
    assert body["totals"]["total"] == 20


def test_group_by_day_fills_empty_days(client, mix):
    body = client.get(
        f"{URL}?since=2026-01-05T00:00:00Z&until=2026-01-09T00:00:00Z&group_by=day"
    ).json()
    keys = [g["key"] for g in body["groups"]]
    assert keys == [f"2026-01-0{d}T00:00:00Z" for d in (5, 6, 7, 8)]
    totals = [g["total"] for g in body["groups"]]
    assert totals == [sum(1 for r in WHATSAPP + SMS if r[4] == day) for day in range(3)] + [0]
    empty = body["groups"][3]
    assert empty["delivered_rate"] is None
    assert empty["time_to_deliver_ms"] == {"p50": None, "p90": None, "p99": None}


def test_group_by_hour_and_inbox(client, mix):
    body = client.get(
        f"{URL}?since=2026-01-05T09:00:00Z&until=2026-01-05T12:00:00Z&group_by=hour"
    ).json()
    first_day = sum(1 for r in WHATSAPP + SMS if r[4] == 0)  # all between 10:00 and 11:00
    assert [g["total"] for g in body["groups"]] == [0, first_day, 0]
    body = client.get(f"{URL}?{PERIOD}&group_by=inbox").json()
    assert {g["key"]: g["total"] for g in body["groups"]} == {
        str(mix["inbox"].id): 15,
        str(mix["sms"].id): 5,
    }


def test_filters_inbox_and_channel(client, mix):
    by_inbox = client.get(f"{URL}?{PERIOD}&inbox={mix['sms'].id}").json()["totals"]
    by_channel = client.get(f"{URL}?{PERIOD}&channel=sms").json()["totals"]
    assert by_inbox == by_channel
    assert by_inbox["total"] == 5
    assert_percentiles(by_inbox["time_to_deliver_ms"], _deliver_times(SMS))


def test_template_filter_and_group(client, account, inbox, make_message):
    for name in ["order_shipped", "order_shipped", "welcome"]:
        make_message(inbox, template={"name": name, "language": {"code": "en"}}, created_at=T0)
    make_message(inbox, created_at=T0)
    body = client.get(f"{URL}?{PERIOD}&template=order_shipped").json()
    assert body["totals"]["total"] == 2
    body = client.get(f"{URL}?{PERIOD}&group_by=template").json()
    assert {g["key"]: g["total"] for g in body["groups"]} == {
        "order_shipped": 2,
        "welcome": 1,
        None: 1,
    }


def test_another_account_sees_nothing(other_client, mix):
    body = other_client.get(f"{URL}?{PERIOD}").json()
    assert body["totals"]["total"] == 3
    assert body["totals"]["top_errors"] == []
    # Another account's inbox answers 404, exactly like a missing one (DESIGN §7).
    response = other_client.get(f"{URL}?{PERIOD}&inbox={mix['inbox'].id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_empty_period_gives_zeros_and_nulls(client, mix):
    response = client.get(f"{URL}?since=2025-01-01T00:00:00Z&until=2025-01-02T00:00:00Z")
    assert response.status_code == 200
    totals = response.json()["totals"]
    assert totals["total"] == 0
    assert set(totals["by_status"].values()) == {0}
    assert totals["delivered_rate"] is None
    assert totals["read_rate"] is None
    assert totals["failed_rate"] is None
    assert totals["time_to_deliver_ms"] == {"p50": None, "p90": None, "p99": None}
    assert totals["time_to_read_ms"] == {"p50": None, "p90": None, "p99": None}
    assert totals["top_errors"] == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("since=yesterday", "since"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("group_by=contact", "group_by"),
        ("campaign=spring", "campaign"),
        ("channel=pigeon", "channel"),
        ("inbox=not-a-uuid", "inbox"),
        ("since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z&group_by=hour", "group_by"),
    ],
)
def test_bad_input_is_a_clear_400(client, query, field):
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error.get("details", {}) or error.get("field") == field


def test_unauthenticated_is_401(anon):
    assert anon.get(URL).status_code == 401


def test_csv_is_the_same_table(client, mix):
    response = client.get(f"{URL}?{PERIOD}&group_by=channel&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["group"] for r in rows] == ["total", "WHATSAPP", "SMS"]
    json_body = client.get(f"{URL}?{PERIOD}&group_by=channel").json()
    for row, group in zip(rows, [json_body["totals"], *json_body["groups"]], strict=True):
        assert int(row["total"]) == group["total"]
        assert int(row["by_status.READ"]) == group["by_status"]["READ"]
        assert float(row["time_to_deliver_ms.p90"]) == group["time_to_deliver_ms"]["p90"]
    assert rows[2]["read_rate"] == "0.0"
    assert rows[2]["time_to_read_ms.p50"] == ""
    assert rows[0]["top_error"].startswith("131047 Re-engagement message (2)")


def _add_messages(make_message, inbox, n, start):
    for i in range(n):
        at = start + timedelta(minutes=i)
        make_message(
            inbox,
            to=f"+1650777{i:04d}",
            status=["read", "failed", "delivered"][i % 3],
            created_at=at,
            sent_at=at,
            delivered_at=at + timedelta(seconds=i % 7) if i % 3 != 1 else None,
            read_at=at + timedelta(seconds=30) if i % 3 == 0 else None,
            error_code=f"code{i % 4}" if i % 3 == 1 else "",
        )


@pytest.mark.parametrize("group_by", ["", "channel", "inbox", "day"])
def test_query_count_does_not_grow_with_data(client, account, inbox, make_message, group_by):
    url = f"{URL}?{PERIOD}&inbox={inbox.id}&group_by={group_by}"
    counts = []
    for n in (3, 60):
        _add_messages(make_message, inbox, n, T0 + timedelta(hours=len(counts)))
        client.get(url)  # warm up (API key last_used_at)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    # auth + inbox + totals (+ groups) + failures (+ 2 sorted duration reads on SQLite)
    assert counts[1] <= 7
