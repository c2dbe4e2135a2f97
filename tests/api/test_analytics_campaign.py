"""GET /api/v1/analytics/delivery?campaign= (DESIGN §15, §16): one campaign's messages only.

The rollup has no campaign dimension, so a campaign query reads the campaign's messages; its
percentiles are exact whatever the threshold for the rollup's histograms.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox import analytics
from inbox.models import Campaign
from tests.api.test_analytics import PERIOD, SMS, T0, URL, WHATSAPP, _create, assert_percentiles

# The campaign's own messages: (status, delivered after ms, read after ms, error code, day).
CAMPAIGN = [
    ("read", 700, 45_000, "", 0),
    ("read", 1300, 20_000, "", 0),
    ("read", 2900, 300_000, "", 1),
    ("delivered", 400, None, "", 1),
    ("delivered", 5200, None, "", 2),
    ("delivered", 900, None, "", 2),
    ("sent", None, None, "", 2),
    ("failed", None, None, "130429", 1),
    ("failed", None, None, "130429", 2),
    ("failed", None, None, "131026", 2),
    ("expired", None, None, "expired", 2),
]


def _campaign(account, inbox, name):
    return Campaign.objects.create(account=account, inbox=inbox, name=name, total=100)


@pytest.fixture
def campaigns(account, other_account, inbox, sms_inbox, make_inbox, make_message):
    spring = _campaign(account, inbox, "Spring sale")
    for message in _create(make_message, inbox, CAMPAIGN, start_minute=100):
        message.campaign = spring
        message.save(update_fields=["campaign"])
    # Not counted with campaign=spring: messages of no campaign, of another campaign, one of
    # the campaign created before `since`, and another account's campaign.
    _create(make_message, inbox, WHATSAPP)
    _create(make_message, sms_inbox, SMS, start_minute=30)
    autumn = _campaign(account, sms_inbox, "Autumn")
    for message in _create(make_message, sms_inbox, [("delivered", 10, None, "", 0)] * 2, 200):
        message.campaign = autumn
        message.save(update_fields=["campaign"])
    make_message(
        inbox,
        to="+16505550997",
        status="sent",
        created_at=T0 - timedelta(minutes=1),
        campaign=spring,
    )
    other_inbox = make_inbox(other_account)
    theirs = _campaign(other_account, other_inbox, "Theirs")
    for message in _create(make_message, other_inbox, [("delivered", 7, None, "", 0)] * 3):
        message.campaign = theirs
        message.save(update_fields=["campaign"])
    return {"spring": spring, "autumn": autumn, "theirs": theirs}


def _deliver_times(rows):
    return sorted(r[1] for r in rows if r[1] is not None)


def _read_times(rows):
    return sorted(r[2] for r in rows if r[2] is not None)


def test_campaign_filter_exact_counts_rates_and_percentiles(client, campaigns):
    response = client.get(f"{URL}?{PERIOD}&campaign={campaigns['spring'].id}")
    assert response.status_code == 200, response.content
    totals = response.json()["totals"]
    assert totals["total"] == 11
    assert totals["by_status"] == {
        "QUEUED": 0,
        "UNKNOWN": 0,
        "SENT": 1,
        "RECEIVED": 0,
        "DELIVERED": 3,
        "READ": 3,
        "FAILED": 3,
        "EXPIRED": 1,
        "DELETED": 0,
    }
    assert totals["delivered_rate"] == pytest.approx(6 / 11)
    assert totals["read_rate"] == pytest.approx(3 / 11)
    assert totals["failed_rate"] == pytest.approx(4 / 11)
    assert_percentiles(totals["time_to_deliver_ms"], _deliver_times(CAMPAIGN))
    assert_percentiles(totals["time_to_read_ms"], _read_times(CAMPAIGN))
    assert [(e["code"], e["count"]) for e in totals["top_errors"]] == [
        ("130429", 2),
        ("131026", 1),
        ("expired", 1),
    ]
    # Without the filter the same period holds everything of the account.
    everything = client.get(f"{URL}?{PERIOD}").json()["totals"]
    assert everything["total"] == 11 + len(WHATSAPP) + len(SMS) + 2


def test_campaign_filter_with_groups_and_other_filters(client, campaigns, inbox, sms_inbox):
    spring = campaigns["spring"].id
    body = client.get(f"{URL}?{PERIOD}&campaign={spring}&group_by=day").json()
    assert [g["total"] for g in body["groups"]] == [
        sum(1 for r in CAMPAIGN if r[4] == day) for day in range(3)
    ]
    day_two = [r for r in CAMPAIGN if r[4] == 2]
    assert_percentiles(body["groups"][2]["time_to_deliver_ms"], _deliver_times(day_two))
    body = client.get(f"{URL}?{PERIOD}&campaign={spring}&group_by=channel").json()
    assert [(g["key"], g["total"]) for g in body["groups"]] == [("WHATSAPP", 11)]
    # Filters combine: the campaign's inbox is WhatsApp, so SMS leaves nothing.
    assert (
        client.get(f"{URL}?{PERIOD}&campaign={spring}&channel=sms").json()["totals"]["total"] == 0
    )
    assert (
        client.get(f"{URL}?{PERIOD}&campaign={spring}&inbox={inbox.id}").json()["totals"]["total"]
        == 11
    )
    autumn = client.get(f"{URL}?{PERIOD}&campaign={campaigns['autumn'].id}").json()["totals"]
    assert autumn["total"] == 2
    assert autumn["time_to_deliver_ms"] == {"p50": 10.0, "p90": 10.0, "p99": 10.0}


def test_campaign_percentiles_stay_exact_beyond_the_histogram_threshold(
    client, campaigns, monkeypatch
):
    """The rollup's histograms have no campaign: a campaign's percentiles are exact always."""
    monkeypatch.setattr(analytics, "EXACT_PERCENTILES_UP_TO", 0)
    body = client.get(f"{URL}?{PERIOD}&campaign={campaigns['spring'].id}&group_by=day").json()
    assert_percentiles(body["totals"]["time_to_deliver_ms"], _deliver_times(CAMPAIGN))
    assert_percentiles(body["totals"]["time_to_read_ms"], _read_times(CAMPAIGN))
    day_zero = [r for r in CAMPAIGN if r[4] == 0]
    assert_percentiles(body["groups"][0]["time_to_read_ms"], _read_times(day_zero))


def test_another_accounts_campaign_is_a_404(client, other_client, campaigns):
    # Theirs, asked by us; ours, asked by them; one that does not exist: the same 404.
    for api, campaign_id in (
        (client, campaigns["theirs"].id),
        (other_client, campaigns["spring"].id),
        (client, uuid.uuid4()),
    ):
        response = api.get(f"{URL}?{PERIOD}&campaign={campaign_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    # Their own campaign: their three messages, none of ours.
    theirs = other_client.get(f"{URL}?{PERIOD}&campaign={campaigns['theirs'].id}").json()
    assert theirs["totals"]["total"] == 3


def test_campaign_must_be_an_id(client):
    response = client.get(f"{URL}?campaign=spring")
    assert response.status_code == 400
    assert "campaign" in response.json()["error"]["details"]


def test_campaign_csv_is_the_same_table(client, campaigns):
    url = f"{URL}?{PERIOD}&campaign={campaigns['spring'].id}&group_by=channel"
    rows = list(csv.DictReader(io.StringIO(client.get(f"{url}&format=csv").content.decode())))
    assert [(r["group"], r["total"]) for r in rows] == [("total", "11"), ("WHATSAPP", "11")]
    body = client.get(url).json()
    assert float(rows[0]["time_to_read_ms.p90"]) == body["totals"]["time_to_read_ms"]["p90"]
    assert rows[0]["top_error"].startswith("130429 ")


@pytest.mark.parametrize("group_by", ["", "channel", "day"])
def test_campaign_query_count_does_not_grow_with_data(
    client, account, inbox, make_message, group_by
):
    campaign = _campaign(account, inbox, "Growing")
    url = f"{URL}?{PERIOD}&campaign={campaign.id}&group_by={group_by}"
    counts = []
    for n in (3, 60):
        for i in range(n):
            at = T0 + timedelta(hours=len(counts), minutes=i)
            make_message(
                inbox,
                to=f"+1650888{len(counts)}{i:03d}",
                status=["read", "failed", "delivered"][i % 3],
                created_at=at,
                sent_at=at,
                delivered_at=at + timedelta(seconds=i % 7) if i % 3 != 1 else None,
                read_at=at + timedelta(seconds=30) if i % 3 == 0 else None,
                error_code=f"code{i % 4}" if i % 3 == 1 else "",
                campaign=campaign,
            )
        client.get(url)  # warm up (API key last_used_at)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200
        assert response.json()["totals"]["total"] == 3 + (60 if counts else 0)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    # auth + campaign + counts + percentiles (2 sorted duration reads on SQLite)
    assert counts[1] <= 6
