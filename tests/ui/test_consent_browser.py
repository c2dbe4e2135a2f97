"""In the browser: an SMS contact replies STOP (a signed Twilio webhook to the live server), and
the agent's conversation shows the opt-out banner instead of the compose box; START brings the
compose box back (on reload)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
from playwright.sync_api import expect

from inbox import services as inbox_services
from inbox.models import Inbox
from tests.webhooks.conftest import CONFIGS, sign

SMS_TO = "+15558675310"


def _sms(live_url, inbox, text, sid):
    body = urlencode(
        {
            "AccountSid": inbox.config["account_sid"],
            "MessageSid": sid,
            "SmsStatus": "received",
            "From": SMS_TO,
            "To": inbox.config["from_number"],
            "Body": text,
            "NumMedia": "0",
        }
    )
    signed = sign(inbox, body)
    response = httpx.post(
        live_url + inbox.webhook_path,
        content=signed.body,
        headers={**signed.headers, "Content-Type": signed.content_type},
    )
    assert response.status_code == 200


def test_stop_replaces_the_compose_box_with_the_banner(agent_page, account, live_url, screenshot):
    inbox = Inbox.objects.create(
        account=account, name="SMS", channel_type="twilio_sms", config=CONFIGS["twilio_sms"]
    )
    contact = inbox_services.contact_get_or_create(inbox=inbox, address=SMS_TO)
    conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)

    agent_page.goto(f"/conversations/{conversation.id}/")
    expect(agent_page.locator("#compose-content")).to_be_visible()

    _sms(live_url, inbox, "Stop", "SMstop1")
    agent_page.reload()
    banner = agent_page.locator("[data-opted-out]")
    expect(banner).to_contain_text("This contact opted out by replying STOP on ")
    expect(agent_page.locator("#compose-content")).to_have_count(0)
    expect(agent_page.locator("[data-messages]")).to_contain_text("Stop")
    screenshot(agent_page, "consent-opted-out")

    _sms(live_url, inbox, "START", "SMstart1")
    agent_page.reload()
    expect(agent_page.locator("#compose-content")).to_be_visible()
    expect(agent_page.locator("[data-opted-out]")).to_have_count(0)
