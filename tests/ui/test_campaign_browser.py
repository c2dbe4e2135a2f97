"""A campaign's page in a real Chromium against a real daphne (DESIGN §16): signed status
webhooks for its messages move the funnel without a reload, and Pause stops the sending."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from inbox.models import Message
from statuses.campaigns import create
from statuses.campaigns.recipients import Recipient
from tests.fakes.whatsapp_send import FakeWhatsApp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# As the analytics screenshots: docs/ only with TICKMARK_SCREENSHOTS=1 (a test run never
# changes a tracked file), test-artifacts/ otherwise.
SHOTS = Path(__file__).resolve().parents[2] / (
    "docs" if os.environ.get("TICKMARK_SCREENSHOTS") == "1" else "test-artifacts"
)
RECIPIENTS = [f"+1650555{i:04d}" for i in range(6)]


def _work(max_tasks=None):
    """Run the real worker (django-tasks-db) until the queue is empty or ``max_tasks`` ran."""
    from django_tasks_db.management.commands.db_worker import Worker

    Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=max_tasks,
        worker_id="ui-campaign",
        excluded_queue_names=[],
    ).run()


def _webhook(live_url, inbox, statuses):
    """Meta's status webhook, signed with the app secret, posted to the real endpoint."""
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": inbox.config["phone_number_id"]},
                                "statuses": statuses,
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    signature = hmac.new(inbox.config["app_secret"].encode(), body, hashlib.sha256).hexdigest()
    response = httpx.post(
        f"{live_url}/webhooks/whatsapp_cloud/{inbox.id}/",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
    )
    assert response.status_code == 200, response.text


def _status(wamid, status, **extra):
    return {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": "16505550000",
        **extra,
    }


def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _count(page, step):
    return page.locator(f'.an-kpis [data-count="{step}"]')


def test_funnel_moves_live_and_pause_stops_sending(
    agent_page, live_url, account, make_inbox, make_message
):
    provider = FakeWhatsApp(delay=0)
    inbox = make_inbox(account, api_base_url=provider.url)
    inbox.name = "Shop WhatsApp"
    inbox.save()
    campaign, rejected = create.campaign_create(
        account=account,
        inbox=inbox,
        name="Order updates",
        template={"name": "order_update", "language": "en"},
        recipients=[Recipient(i, to) for i, to in enumerate(RECIPIENTS)]
        + [Recipient(len(RECIPIENTS), "not a number")],
    )
    assert [r.code for r in rejected] == ["invalid_address"]
    _work(max_tasks=4)  # materialise the batch, then three sends
    assert provider.count() == 3
    make_message(inbox, to="+16505559999", status="sent", provider_message_id="wamid.CHAT")

    page = agent_page
    page.goto("/")
    page.get_by_role("link", name="Campaigns").click()
    expect(page).to_have_url("/campaigns/")
    row = page.locator(f'[data-campaign="{campaign.id}"]')
    expect(row).to_contain_text("Order updates")
    expect(row).to_contain_text("Shop WhatsApp")
    expect(row.locator('[data-count="sent"]')).to_have_text("3")
    row.get_by_role("link", name="Order updates").click()
    expect(page.locator("h1")).to_have_text("Order updates")
    expect(page.locator("[data-rejected]")).to_have_text("1")
    expect(page.locator("[data-connection]")).to_have_text("Live")
    expect(page.locator("[data-campaign-status]")).to_have_text("Running")
    expect(_count(page, "queued")).to_have_text("3")
    expect(_count(page, "sent")).to_have_text("3")
    expect(_count(page, "delivered")).to_have_text("0")
    page.evaluate("window.__sameDocument = true")
    refreshes = 'document.querySelector("[data-campaign-panel]").dataset.refreshed || "0"'
    # The one re-read every connect makes (a status may have come before the socket opened).
    expect(page.locator("[data-campaign-panel]")).to_have_attribute("data-refreshed", "1")

    # A status of a message outside the campaign (a chat reply) does not make the page re-read.
    _webhook(live_url, inbox, [_status("wamid.CHAT", "delivered")])
    expect_delivered = Message.objects.filter(provider_message_id="wamid.CHAT", status="delivered")
    assert _eventually(expect_delivered.exists)
    time.sleep(2.5)  # more than the page's throttle and a re-read
    assert page.evaluate(refreshes) == "1"

    # The provider reports on the three sent messages: the numbers move without a reload.
    wamids = {body["to"]: f"wamid.{i}" for i, body in enumerate(provider.bodies, start=1)}
    first, second, third = wamids.values()
    _webhook(live_url, inbox, [_status(first, "delivered"), _status(second, "delivered")])
    expect(_count(page, "delivered")).to_have_text("2", timeout=15_000)
    assert int(page.evaluate(refreshes)) > 1
    _webhook(live_url, inbox, [_status(first, "read")])
    expect(_count(page, "read")).to_have_text("1", timeout=15_000)
    failure = {"code": 131026, "title": "Message undeliverable"}
    _webhook(live_url, inbox, [_status(third, "failed", errors=[failure])])
    expect(_count(page, "failed")).to_have_text("1", timeout=15_000)
    expect(_count(page, "sent")).to_have_text("2")  # the failed one left the funnel
    reason = page.locator('.an-error[data-error-code="131026"]')
    expect(reason).to_contain_text("Message undeliverable")
    expect(reason.locator("[data-error-count]")).to_have_text("1")
    expect(page.locator('[data-bar="read"] title')).to_have_text("Read: 1 (16.7 %)")
    assert page.evaluate("window.__sameDocument") is True
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "campaign.png"), full_page=True)

    # Pause: the worker runs the remaining send tasks, and none reaches the provider.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".an-flash")).to_have_text("Paused “Order updates”.")
    expect(page.locator("[data-campaign-status]")).to_have_text("Paused")
    _work()
    assert provider.count() == 3
    assert Message.objects.filter(campaign=campaign, status="queued").count() == 3
    expect(_count(page, "queued")).to_have_text("3")

    # Resume: the rest is sent, and the page follows the send results by itself.
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("[data-campaign-status]")).to_have_text("Running")
    page.evaluate("window.__sameDocument = true")
    _work()
    assert provider.count() == 6
    # each recipient once (WhatsApp's "to" is the E.164 digits)
    assert sorted(body["to"] for body in provider.bodies) == [to[1:] for to in RECIPIENTS]
    expect(_count(page, "queued")).to_have_text("0", timeout=15_000)
    expect(_count(page, "sent")).to_have_text("5")
    expect(page.locator('[data-progress="handed"]')).to_have_text("6 of 6 (100.0 %)")
    assert page.evaluate("window.__sameDocument") is True


def test_create_from_csv_then_cancel(agent_page, account, make_inbox, tmp_path):
    provider = FakeWhatsApp(delay=0)
    inbox = make_inbox(account, api_base_url=provider.url)
    csv = tmp_path / "recipients.csv"
    csv.write_text("to,name\n+16505551001,Ana\n+16505551002,Bo\nnope,Cy\n")

    page = agent_page
    page.goto("/campaigns/")
    expect(page.locator("[data-empty] h2")).to_have_text("No campaign yet")
    page.get_by_label("Name").fill("Winter sale")
    page.get_by_label("Inbox").select_option(label=inbox.name)
    page.get_by_label("or WhatsApp template").fill("winter_sale")
    page.get_by_label("Template language").fill("en_US")
    page.get_by_label("Recipients (CSV)").set_input_files(str(csv))
    page.get_by_role("button", name="Create and start sending").click()

    expect(page.locator("h1")).to_have_text("Winter sale")
    expect(page.locator(".an-flash").first).to_have_text(
        "Created “Winter sale”: 2 recipient(s) accepted."
    )
    expect(page.locator(".an-flash--warning")).to_contain_text("line 4 (nope): invalid_address")
    expect(page.locator('[data-progress="created"]')).to_have_text("0 of 2 (0.0 %)")
    # The worker creates the messages; the page (polling while it does) shows them queued.
    _work(max_tasks=1)
    assert provider.count() == 0
    expect(page.locator('[data-progress="created"]')).to_have_text(
        "2 of 2 (100.0 %)", timeout=15_000
    )
    expect(_count(page, "queued")).to_have_text("2")

    # Cancel asks first; dismissing keeps the campaign running.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel campaign").click()
    expect(page.locator("[data-campaign-status]")).to_have_text("Running")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel campaign").click()
    expect(page.locator("[data-campaign-status]")).to_have_text("Cancelled")
    expect(_count(page, "failed")).to_have_text("2")
    reason = page.locator('.an-error[data-error-code="cancelled"]')
    expect(reason).to_contain_text("Campaign cancelled")
    expect(page.locator("[data-action]")).to_have_count(0)
    _work()
    assert provider.count() == 0  # nothing reached the provider
