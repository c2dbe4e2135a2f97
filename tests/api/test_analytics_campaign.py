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


# group_by=campaign: the period's messages that belong to a campaign, one group per campaign.

AUTUMN_DELIVER_MS = [10, 10]


def _spring_by_status():
    return {
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


@pytest.mark.parametrize("exact_up_to", [analytics.EXACT_PERCENTILES_UP_TO, 0])
def test_group_by_campaign_exact_counts_rates_and_percentiles(
    client, campaigns, monkeypatch, exact_up_to
):
    """Two campaigns and messages of none: one group per campaign, biggest first, keyed by the
    campaign's id; messages of no campaign are in no group nor in the totals. Percentiles are
    exact even beyond the histograms' threshold (there are no campaign histograms)."""
    monkeypatch.setattr(analytics, "EXACT_PERCENTILES_UP_TO", exact_up_to)
    response = client.get(f"{URL}?{PERIOD}&group_by=campaign")
    assert response.status_code == 200, response.content
    body = response.json()
    spring_id, autumn_id = str(campaigns["spring"].id), str(campaigns["autumn"].id)
    assert [(g["key"], g["total"]) for g in body["groups"]] == [(spring_id, 11), (autumn_id, 2)]
    spring, autumn = body["groups"]

    assert spring["by_status"] == _spring_by_status()
    assert spring["delivered_rate"] == pytest.approx(6 / 11)
    assert spring["read_rate"] == pytest.approx(3 / 11)
    assert spring["failed_rate"] == pytest.approx(4 / 11)
    assert_percentiles(spring["time_to_deliver_ms"], _deliver_times(CAMPAIGN))
    assert_percentiles(spring["time_to_read_ms"], _read_times(CAMPAIGN))
    assert [(e["code"], e["count"]) for e in spring["top_errors"]] == [
        ("130429", 2),
        ("131026", 1),
        ("expired", 1),
    ]
    # The same figures as the campaign filter gives for that campaign alone.
    alone = client.get(f"{URL}?{PERIOD}&campaign={spring_id}").json()["totals"]
    assert {k: v for k, v in spring.items() if k != "key"} == alone

    assert autumn["by_status"]["DELIVERED"] == 2
    assert (autumn["delivered_rate"], autumn["read_rate"], autumn["failed_rate"]) == (1, 0, 0)
    assert autumn["time_to_deliver_ms"] == {"p50": 10.0, "p90": 10.0, "p99": 10.0}
    assert autumn["time_to_read_ms"] == {"p50": None, "p90": None, "p99": None}
    assert autumn["top_errors"] == []

    # Totals over the campaigns' messages only: the groups add up to them.
    totals = body["totals"]
    assert totals["total"] == 13
    assert totals["by_status"] == {**_spring_by_status(), "DELIVERED": 5}
    assert totals["delivered_rate"] == pytest.approx(8 / 13)
    assert totals["read_rate"] == pytest.approx(3 / 13)
    assert totals["failed_rate"] == pytest.approx(4 / 13)
    assert_percentiles(
        totals["time_to_deliver_ms"], sorted(_deliver_times(CAMPAIGN) + AUTUMN_DELIVER_MS)
    )
    assert_percentiles(totals["time_to_read_ms"], _read_times(CAMPAIGN))
    assert totals["top_errors"] == spring["top_errors"]


def test_group_by_campaign_is_tenant_scoped(client, other_client, campaigns):
    ours = client.get(f"{URL}?{PERIOD}&group_by=campaign").json()
    assert str(campaigns["theirs"].id) not in {g["key"] for g in ours["groups"]}
    theirs = other_client.get(f"{URL}?{PERIOD}&group_by=campaign").json()
    assert [(g["key"], g["total"]) for g in theirs["groups"]] == [(str(campaigns["theirs"].id), 3)]
    assert theirs["totals"]["total"] == 3


def test_group_by_campaign_combines_with_filters_and_csv(client, campaigns, sms_inbox):
    spring_id, autumn_id = str(campaigns["spring"].id), str(campaigns["autumn"].id)
    body = client.get(f"{URL}?{PERIOD}&group_by=campaign&campaign={spring_id}").json()
    assert [(g["key"], g["total"]) for g in body["groups"]] == [(spring_id, 11)]
    body = client.get(f"{URL}?{PERIOD}&group_by=campaign&channel=sms").json()
    assert [(g["key"], g["total"]) for g in body["groups"]] == [(autumn_id, 2)]
    assert body["totals"]["total"] == 2  # the SMS inbox's 5 messages of no campaign left out
    body = client.get(f"{URL}?{PERIOD}&group_by=campaign&inbox={sms_inbox.id}").json()
    assert [(g["key"], g["total"]) for g in body["groups"]] == [(autumn_id, 2)]
    url = f"{URL}?{PERIOD}&group_by=campaign&format=csv"
    rows = list(csv.DictReader(io.StringIO(client.get(url).content.decode())))
    assert [(r["group"], r["total"]) for r in rows] == [
        ("total", "13"),
        (spring_id, "11"),
        (autumn_id, "2"),
    ]


def test_group_by_campaign_empty_period_gives_no_groups(client, campaigns):
    response = client.get(
        f"{URL}?since=2025-01-01T00:00:00Z&until=2025-01-02T00:00:00Z&group_by=campaign"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["groups"] == []
    assert body["totals"]["total"] == 0
    assert body["totals"]["delivered_rate"] is None
    assert body["totals"]["time_to_deliver_ms"] == {"p50": None, "p90": None, "p99": None}
    assert body["totals"]["top_errors"] == []


def test_group_by_campaign_with_only_messages_of_no_campaign_gives_no_groups(
    client, inbox, make_message
):
    _create(make_message, inbox, WHATSAPP)
    body = client.get(f"{URL}?{PERIOD}&group_by=campaign").json()
    assert body["groups"] == []
    assert body["totals"]["total"] == 0


def test_group_by_campaign_query_count_does_not_grow_with_data(
    client, account, inbox, sms_inbox, make_message
):
    url = f"{URL}?{PERIOD}&group_by=campaign"
    counts = []
    for n in (3, 60):
        # Each round: a new campaign on each inbox, and as many messages of no campaign.
        round_campaigns = [
            _campaign(account, inbox, f"A{len(counts)}"),
            _campaign(account, sms_inbox, f"B{len(counts)}"),
            None,
        ]
        for i in range(n):
            at = T0 + timedelta(hours=len(counts), minutes=i)
            for j, campaign in enumerate(round_campaigns):
                make_message(
                    campaign.inbox if campaign else inbox,
                    to=f"+1650889{len(counts)}{j}{i:03d}",
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
        body = response.json()
        assert len(body["groups"]) == 2 * (len(counts) + 1)
        assert body["totals"]["total"] == 2 * (3 + (60 if counts else 0))
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    # auth + counts + percentiles (2 sorted duration reads on SQLite)
    assert counts[1] <= 5
