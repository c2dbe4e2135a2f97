"""The analytics page in a real Chromium against a real daphne: filters change the numbers,
statuses arriving over /ws/agent/ refresh them, and triage resends a retryable error."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from statuses import services
from statuses.machine import Status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Screenshots go to test-artifacts/ on every run, and into docs/ only with TICKMARK_SCREENSHOTS=1
# (a test run never changes a tracked file).
DOCS = Path(__file__).resolve().parents[2] / (
    "docs" if os.environ.get("TICKMARK_SCREENSHOTS") == "1" else "test-artifacts"
)


def _seed(account, make_inbox, make_message):
    whatsapp = make_inbox(account)
    whatsapp.name = "Support WhatsApp"
    whatsapp.save()
    sms = make_inbox(account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+1555")
    sms.name = "Alerts SMS"
    sms.save()
    now = timezone.now()

    def at(days=0, hours=0, seconds=0):
        return now - timedelta(days=days, hours=hours) + timedelta(seconds=seconds)

    for i in range(6):  # WhatsApp over the past days: read, at various speeds
        make_message(
            whatsapp,
            to=f"+1650100{i:04d}",
            status=Status.READ,
            created_at=at(days=1 + i % 5, hours=3),
            sent_at=at(days=1 + i % 5, hours=3),
            delivered_at=at(days=1 + i % 5, hours=3, seconds=1 + i),
            read_at=at(days=1 + i % 5, hours=2),
        )
    for i, code in enumerate(["130429", "130429", "131047"]):
        make_message(
            whatsapp,
            to=f"+1650200{i:04d}",
            status=Status.FAILED,
            error_code=code,
            error_detail=f"(#{code}) provider's words",
            created_at=at(days=1, hours=i + 1),
            sent_at=at(days=1, hours=i + 1),
            failed_at=at(days=1, hours=i + 1, seconds=3),
        )
    for i in range(4):
        make_message(
            sms,
            to=f"+1650300{i:04d}",
            status=Status.DELIVERED,
            created_at=at(days=2, hours=i),
            sent_at=at(days=2, hours=i),
            delivered_at=at(days=2, hours=i, seconds=4),
        )
    pending = make_message(
        sms, to="+16503009999", status=Status.SENT, created_at=at(hours=1), sent_at=at(hours=1)
    )
    return whatsapp, sms, pending


def _filter(page, name):
    return page.locator(f'select[name="{name}"]')


def _kpi(page, name):
    return page.locator(f'[data-kpi="{name}"]')


def test_filters_live_refresh_and_triage(agent_page, account, make_inbox, make_message):
    whatsapp, sms, pending = _seed(account, make_inbox, make_message)
    page = agent_page
    page.goto("/")
    page.get_by_role("link", name="Analytics").click()
    expect(page).to_have_url("/analytics/")
    expect(page.locator("h1")).to_have_text("Delivery analytics")
    expect(_kpi(page, "total")).to_have_text("14")
    expect(_kpi(page, "delivered_rate")).to_have_text("71.4 %")  # 10 of 14
    expect(_kpi(page, "failed_rate")).to_have_text("21.4 %")  # 3 of 14
    expect(page.locator("[data-channel]")).to_have_count(2)
    expect(page.locator(".an-error").first).to_contain_text("Rate limit hit")
    expect(page.locator("[data-connection]")).to_have_text("Live")
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "analytics.png"), full_page=True)

    # Filters: each one reloads the page with other numbers.
    _filter(page, "channel").select_option("SMS")
    expect(page).to_have_url("/analytics/?period=7d&inbox=&channel=SMS")
    expect(_kpi(page, "total")).to_have_text("5")
    expect(_kpi(page, "failed_rate")).to_have_text("0.0 %")
    expect(page.locator("[data-no-errors]")).to_be_visible()
    _filter(page, "channel").select_option("")
    _filter(page, "inbox").select_option(label="Support WhatsApp")
    expect(_kpi(page, "total")).to_have_text("9")
    _filter(page, "period").select_option("24h")
    expect(page.locator(".an-empty h2")).to_have_text("No outgoing messages in this period")
    _filter(page, "inbox").select_option("")
    expect(_kpi(page, "total")).to_have_text("1")  # only the pending SMS is that recent
    expect(_kpi(page, "delivered_rate")).to_have_text("0.0 %")
    # This page's socket is in its account's group, and the re-read every connect makes is done:
    # what follows is the event's own.
    expect(page.locator("[data-connection]")).to_have_text("Live")
    expect(page.locator("[data-analytics-panel]")).to_have_attribute("data-refreshed", "1")

    # Live: a delivery report arrives; the page re-reads its numbers by itself.
    services.message_status_report(message=pending, status="delivered", source="webhook")
    # the page waits 1.5 s for more events before it re-reads (debounce); allow a loaded machine
    expect(_kpi(page, "delivered_rate")).to_have_text("100.0 %", timeout=15_000)

    # Triage: from the top error to its messages, and a bulk resend.
    _filter(page, "period").select_option("7d")
    link = page.locator('.an-error[data-error-code="130429"] a[data-failed-link]')
    expect(link).to_contain_text("resend them")
    link.click()
    expect(page.locator("h1")).to_have_text("Rate limit hit")
    expect(page.locator("[data-failed-message]")).to_have_count(2)
    expect(page.get_by_role("link", name="Open conversation").first).to_be_visible()
    page.screenshot(path=str(DOCS / "analytics-triage.png"), full_page=True)
    page.locator("[data-bulk-resend]").click()
    expect(page.locator(".an-flash")).to_contain_text("Resent 2 messages.")
    expect(page.locator("[data-empty]")).to_be_visible()

    # The CSV link downloads the same table.
    page.goto("/analytics/?period=7d")
    with page.expect_download() as download:
        page.locator("[data-csv]").click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0].startswith("group,total,by_status.QUEUED")
    assert text.splitlines()[1].startswith("total,14,2,")  # the two resent are queued again


def test_a_status_that_arrives_before_the_socket_opens_is_shown(
    agent_page, account, make_inbox, make_message
):
    """The page is drawn, then its script opens the socket: a status committed in between
    reaches no socket. The numbers must not wait for the next status to be right."""
    _, _, pending = _seed(account, make_inbox, make_message)
    page = agent_page
    held = []
    page.route("**/analytics.js*", lambda route: held.append(route))  # the socket's script waits
    page.goto("/analytics/?period=24h&inbox=&channel=", wait_until="commit")  # not "load": held
    expect(_kpi(page, "delivered_rate")).to_have_text("0.0 %")
    while not held:
        page.wait_for_timeout(20)
    services.message_status_report(message=pending, status="delivered", source="webhook")
    held[0].continue_()
    expect(page.locator("[data-connection]")).to_have_text("Live")
    expect(_kpi(page, "delivered_rate")).to_have_text("100.0 %", timeout=15_000)


def test_campaign_filter(agent_page, account, make_inbox, make_message):
    from inbox.models import Campaign, Message

    whatsapp, sms, pending = _seed(account, make_inbox, make_message)
    # The campaign sent three of the WhatsApp messages: two read, one rate-limited failure.
    spring = Campaign.objects.create(
        account=account,
        inbox=whatsapp,
        name="Spring sale",
        total=3,
        created_at=timezone.now() - timedelta(days=10),
    )
    read = Message.objects.filter(inbox=whatsapp, status=Status.READ).order_by("to_address")[:2]
    failed = Message.objects.filter(inbox=whatsapp, error_code="130429").order_by("to_address")[:1]
    Message.objects.filter(id__in=[m.id for m in [*read, *failed]]).update(campaign=spring)
    page = agent_page

    # From the campaign's page to its analytics: the whole campaign, its numbers only.
    page.goto(f"/campaigns/{spring.id}/")
    page.locator("[data-campaign-analytics]").click()
    expect(page).to_have_url(f"/analytics/?period=campaign&campaign={spring.id}")
    expect(_kpi(page, "total")).to_have_text("3")
    expect(_kpi(page, "failed_rate")).to_have_text("33.3 %")
    expect(_filter(page, "period")).to_have_value("campaign")
    expect(page.locator(".an-error")).to_have_count(1)
    page.screenshot(path=str(DOCS / "analytics-campaign.png"), full_page=True)

    # Its top error's messages are the campaign's only (two 130429 failures exist in all).
    page.locator('.an-error[data-error-code="130429"] a[data-failed-link]').click()
    expect(page.locator("[data-failed-message]")).to_have_count(1)
    expect(page.locator("main [data-campaign-link]")).to_have_text("Spring sale")
    page.go_back()
    expect(_kpi(page, "total")).to_have_text("3")

    # Leaving the campaign: every message of the last 7 days again.
    _filter(page, "campaign").select_option("")
    expect(_filter(page, "period")).to_have_value("7d")
    expect(_kpi(page, "total")).to_have_text("14")
    # Choosing it again shows the whole campaign.
    _filter(page, "campaign").select_option(str(spring.id))
    expect(_kpi(page, "total")).to_have_text("3")
    expect(_filter(page, "period")).to_have_value("campaign")
