"""The analytics page, its live panel and failed-message triage over HTTP (DESIGN §15)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from inbox.models import Membership
from statuses.machine import Status

pytestmark = pytest.mark.django_db


def _client_for(account, username="ada"):
    user = get_user_model().objects.create_user(username=username, password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client


def _failed(make_message, inbox, code, n, to_prefix="+1650555"):
    now = timezone.now()
    return [
        make_message(
            inbox,
            to=f"{to_prefix}{i:04d}",
            status=Status.FAILED,
            error_code=code,
            error_detail=f"provider said {code}",
            created_at=now - timedelta(hours=1),
            sent_at=now - timedelta(hours=1),
            failed_at=now - timedelta(minutes=59),
        )
        for i in range(n)
    ]


@pytest.fixture
def data(account, inbox, sms_inbox, make_message):
    now = timezone.now()
    for i in range(3):
        make_message(
            inbox,
            to=f"+1650444{i:04d}",
            status=Status.READ,
            created_at=now - timedelta(hours=2),
            sent_at=now - timedelta(hours=2),
            delivered_at=now - timedelta(hours=2) + timedelta(seconds=2),
            read_at=now - timedelta(hours=1),
        )
    permanent = _failed(make_message, inbox, "131047", 2)
    temporary = _failed(make_message, inbox, "130429", 3, to_prefix="+1650666")
    return {"permanent": permanent, "temporary": temporary}


@pytest.fixture
def sms_inbox(account, make_inbox):
    return make_inbox(account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+1555")


def test_page_requires_login(client):
    response = client.get("/analytics/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_page_shows_numbers_errors_and_svg(account, data):
    client = _client_for(account)
    response = client.get("/analytics/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-kpi="total">8<' in html
    assert "<svg" in html and "chart--funnel" in html and "chart--failures" in html
    assert "Re-engagement message" in html and "Rate limit hit" in html
    assert "What to do:" in html
    assert "/api/v1/analytics/delivery?" in html and "format=csv" in html
    assert "<script>" not in html  # no inline script: data goes through json_script
    assert 'id="analytics-config" type="application/json"' in html


def test_filters_change_the_numbers_and_other_inbox_is_ignored(account, data, other_account):
    client = _client_for(account)
    sms = account.inboxes.get(channel_type="twilio_sms")
    html = client.get(f"/analytics/?inbox={sms.id}").content.decode()
    assert "No outgoing messages in this period" in html
    other = client.get("/analytics/?channel=SMS").content.decode()
    assert "No outgoing messages in this period" in other
    assert 'data-kpi="total">8<' in client.get("/analytics/?channel=whatsapp").content.decode()


def test_another_account_sees_nothing(data, other_account):
    client = _client_for(other_account, username="bob")
    html = client.get("/analytics/").content.decode()
    assert "No outgoing messages in this period" in html
    for message in data["temporary"]:
        client.post("/analytics/failed/resend/", {"message": [str(message.id)]})
        message.refresh_from_db()
        assert message.status == Status.FAILED and message.attempt == 1


def test_panel_is_just_the_results(account, data):
    client = _client_for(account)
    html = client.get("/analytics/panel/?period=24h").content.decode()
    assert 'data-kpi="total">8<' in html
    assert "<html" not in html


def test_triage_lists_messages_and_resends_only_retryable(account, data):
    client = _client_for(account)
    page = client.get("/analytics/").content.decode()
    links = dict(
        (code, href.replace("&amp;", "&"))
        for href, code in re.findall(r'href="(/analytics/failed/\?[^"]*code=(\d+)[^"]*)"', page)
    )
    temporary = client.get(links["130429"]).content.decode()
    assert temporary.count("data-failed-message=") == 3
    assert "data-bulk-resend" in temporary
    assert "/conversations/" in temporary and "+16506660000" in temporary
    permanent = client.get(links["131047"]).content.decode()
    assert permanent.count("data-failed-message=") == 2
    assert "data-bulk-resend" not in permanent and "data-no-resend" in permanent

    ids = [str(m.id) for m in data["temporary"] + data["permanent"]]
    response = client.post(
        "/analytics/failed/resend/", {"message": ids, "next": links["130429"]}, follow=True
    )
    assert "Resent 3 messages." in response.content.decode()
    assert "2 not resent" in response.content.decode()
    for message in data["temporary"]:
        message.refresh_from_db()
        assert message.status == Status.QUEUED and message.attempt == 2
    for message in data["permanent"]:
        message.refresh_from_db()
        assert message.status == Status.FAILED and message.attempt == 1
    after = client.get(links["130429"]).content.decode()
    assert "No failed message matches any more" in after


def test_resend_never_redirects_off_site(account, data):
    client = _client_for(account)
    response = client.post("/analytics/failed/resend/", {"next": "https://evil.example/"})
    assert response["Location"] == "/analytics/"


def test_inbox_header_links_to_analytics(account, inbox):
    client = _client_for(account)
    assert 'href="/analytics/"' in client.get("/").content.decode()


def test_page_query_count_does_not_grow_with_data(account, inbox, make_message):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client_for(account)
    counts = []
    for n in (2, 40):
        _failed(make_message, inbox, "130429", n, to_prefix=f"+1{n:03d}")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/analytics/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


@pytest.fixture
def campaign_data(account, inbox, data, make_message):
    """Of the page's 8 messages, one read and the three rate-limited ones were a campaign's."""
    from inbox.models import Campaign, Message

    spring = Campaign.objects.create(
        account=account,
        inbox=inbox,
        name="Spring sale",
        total=4,
        created_at=timezone.now() - timedelta(hours=3),  # before its messages, as always
    )
    read = Message.objects.filter(account=account, status=Status.READ).order_by("to_address")[0]
    ids = [read.id] + [m.id for m in data["temporary"]]
    Message.objects.filter(id__in=ids).update(campaign=spring)
    return spring


def test_campaign_filter_changes_the_numbers_and_keeps_to_triage(account, campaign_data):
    client = _client_for(account)
    everything = client.get("/analytics/").content.decode()
    assert 'data-kpi="total">8<' in everything
    assert 'name="campaign"' in everything and "Spring sale" in everything

    url = f"/analytics/?period=campaign&campaign={campaign_data.id}"
    html = client.get(url).content.decode()
    assert 'data-kpi="total">4<' in html
    assert 'data-kpi="failed_rate">75.0 %<' in html
    assert f'<option value="{campaign_data.id}" selected>' in html
    assert '<option value="campaign" selected>Whole campaign</option>' in html
    assert "Re-engagement message" not in html  # 131047: none of the campaign's messages
    # The live panel, the CSV and the top error's link all keep the campaign.
    panel = client.get(url.replace("/analytics/", "/analytics/panel/")).content.decode()
    assert 'data-kpi="total">4<' in panel
    assert re.search(rf'href="/api/v1/analytics/delivery\?[^"]*campaign={campaign_data.id}', html)
    link = re.search(r'href="(/analytics/failed/\?[^"]*code=130429[^"]*)"', html)[1]
    link = link.replace("&amp;", "&")
    assert f"campaign={campaign_data.id}" in link
    triage = client.get(link).content.decode()
    assert triage.count("data-failed-message=") == 3
    assert "Spring sale" in triage and "data-campaign-link" in triage
    assert f"campaign={campaign_data.id}" in re.search(r'href="(/analytics/\?[^"]*)"', triage)[1]


def test_campaign_triage_lists_only_the_campaigns_messages(
    account, campaign_data, inbox, make_message
):
    outside = _failed(make_message, inbox, "130429", 2, to_prefix="+1650777")
    client = _client_for(account)
    html = client.get(f"/analytics/?period=campaign&campaign={campaign_data.id}").content.decode()
    link = re.search(r'href="(/analytics/failed/\?[^"]*code=130429[^"]*)"', html)[1]
    triage = client.get(link.replace("&amp;", "&")).content.decode()
    assert triage.count("data-failed-message=") == 3
    assert all(str(m.id) not in triage for m in outside)
    everyone = client.get(re.sub(r"campaign=[^&]*&?", "", link.replace("&amp;", "&")))
    everyone = everyone.content.decode()
    assert everyone.count("data-failed-message=") == 5


def test_another_accounts_campaign_is_ignored(account, other_account, campaign_data, data):
    client = _client_for(other_account, username="bob")
    html = client.get(f"/analytics/?period=campaign&campaign={campaign_data.id}").content.decode()
    assert "Spring sale" not in html
    assert "No outgoing messages in this period" in html
    # A malformed id falls back to all our messages, like an unknown inbox.
    ours = _client_for(account).get(f"/analytics/?campaign={campaign_data.id}x").content.decode()
    assert 'data-kpi="total">8<' in ours


def test_campaign_page_links_to_its_analytics(account, campaign_data):
    client = _client_for(account)
    html = client.get(f"/campaigns/{campaign_data.id}/").content.decode()
    href = re.search(r'href="([^"]*)" data-campaign-analytics', html)[1].replace("&amp;", "&")
    assert href == f"/analytics/?period=campaign&campaign={campaign_data.id}"
    assert 'data-kpi="total">4<' in client.get(href).content.decode()


def test_template_filter_changes_the_numbers_and_keeps_to_triage(account, inbox, data):
    from inbox.models import Message, Template

    for name in ("order_update", "welcome"):
        Template.objects.create(account=account, inbox=inbox, name=name, language="en_US")
    # Of the page's 8 messages, the three rate-limited ones were sent with "order_update".
    template = {"name": "order_update", "language": "en_US"}
    Message.objects.filter(id__in=[m.id for m in data["temporary"]]).update(template=template)
    client = _client_for(account)
    everything = client.get("/analytics/").content.decode()
    assert 'data-kpi="total">8<' in everything
    assert 'name="template"' in everything and '<option value="welcome">' in everything

    html = client.get("/analytics/?template=order_update").content.decode()
    assert 'data-kpi="total">3<' in html
    assert 'data-kpi="failed_rate">100.0 %<' in html
    assert '<option value="order_update" selected>' in html
    welcome = client.get("/analytics/?template=welcome").content.decode()
    assert "No outgoing messages in this period" in welcome
    link = re.search(r'href="(/analytics/failed/\?[^"]*code=130429[^"]*)"', html)[1]
    assert "template=order_update" in link
    assert (
        client.get(link.replace("&amp;", "&")).content.decode().count("data-failed-message=") == 3
    )
    # A name the account has no template of is ignored: all messages.
    assert 'data-kpi="total">8<' in client.get("/analytics/?template=nope").content.decode()
