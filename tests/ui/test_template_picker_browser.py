"""The template picker in a real Chromium (DESIGN §13): with the 24-hour window closed the
free-text box is really hidden, an approved template is picked, its fields filled, the preview
follows, the send goes out with Meta's components and the tick moves."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox import services as inbox_services
from inbox.models import Message, Template
from statuses.providers.base import InboundMessage
from tests.fakes.recorder import RecordingServer, Reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAMID = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJUUExBVEU"


@pytest.fixture
def cloud_api():
    """The WhatsApp Cloud API's send endpoint, standing in for Meta."""
    with RecordingServer() as server:
        server.default_reply = Reply(
            200, {"messaging_product": "whatsapp", "messages": [{"id": WAMID}]}
        )
        yield server


def _template(inbox, name, status, **fields):
    return Template.objects.create(
        account_id=inbox.account_id,
        inbox=inbox,
        name=name,
        language="en_US",
        status=status,
        **fields,
    )


def _closed_conversation(inbox, address="+16505076520"):
    """A WhatsApp conversation whose contact last wrote two days ago."""
    inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[
            InboundMessage(
                address, "wamid.IN1", "Thanks!", timezone.now() - timedelta(days=2), "Ana"
            )
        ],
    )
    return inbox.conversations.get(contact__address=address)


def _delivered_webhook(live_url, inbox):
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
                                "statuses": [
                                    {
                                        "id": WAMID,
                                        "status": "delivered",
                                        "timestamp": str(int(time.time())),
                                        "recipient_id": "16505076520",
                                    }
                                ],
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


def test_closed_window_picker_fill_preview_send_tick_moves(
    agent_page, make_inbox, account, live_url, cloud_api, run_tasks, screenshot
):
    inbox = make_inbox(
        account, "whatsapp_cloud", waba_id="102290129340398", api_base_url=cloud_api.url
    )
    _template(
        inbox,
        "order_update",
        "APPROVED",
        category="UTILITY",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."},
        ],
        header_params=1,
        body_params=2,
    )
    _template(
        inbox,
        "survey_invite",
        "PAUSED",
        category="MARKETING",
        rejected_reason="Low quality",
        components=[{"type": "BODY", "text": "How did we do?"}],
    )
    conversation = _closed_conversation(inbox)

    page = agent_page
    page.goto(f"/conversations/{conversation.id}/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")

    # The window is closed: the free-text box is really gone (not just marked hidden).
    expect(page.locator("[data-window-notice]")).to_be_visible()
    expect(page.locator("[data-compose-text]")).to_be_hidden()
    expect(page.locator("#compose-content")).not_to_be_visible()

    # The paused template is listed, not selectable, with why.
    paused = page.locator('[data-template-option="survey_invite"]')
    expect(paused).to_contain_text("MARKETING")
    expect(paused).to_contain_text("PAUSED: Paused by Meta after poor feedback")
    expect(paused).to_contain_text("Low quality")
    expect(paused.locator("input[type=radio]")).to_be_disabled()

    approved = page.locator('[data-template-option="order_update"]')
    expect(approved).to_contain_text("UTILITY")
    send = page.locator("[data-template-send]")
    expect(send).to_be_disabled()
    approved.click()

    # A field per placeholder; the preview follows the typing.
    expect(page.locator("[data-template-fields] input")).to_have_count(3)
    page.fill("#template-header-0", "A-1001")
    page.fill("#template-body-0", "Ana")
    expect(send).to_be_disabled()  # one field still empty
    page.fill("#template-body-1", "A-1001")
    expect(page.locator("[data-template-preview-text]")).to_have_text(
        "Order A-1001\n\nHi Ana, your order A-1001 is on its way."
    )
    screenshot(page, "template-picker")
    expect(send).to_be_enabled()
    send.click()

    bubble = page.locator("li.bubble--outgoing").last
    tick = bubble.locator("button.tick")
    expect(tick).to_have_attribute("data-tick", "pending")
    message = Message.objects.get(direction="outgoing")
    assert message.template_ref.name == "order_update"

    run_tasks()  # the worker sends it to the (fake) Cloud API
    expect(tick).to_have_attribute("data-tick", "single")
    # Opening the conversation also sent WhatsApp its read receipt (DESIGN §14): one send
    # besides it, the template.
    (request,) = [r for r in cloud_api.requests if r.json().get("type") == "template"]
    assert request.json()["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "A-1001"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-1001"}],
            },
        ],
    }

    _delivered_webhook(live_url, inbox)
    expect(tick).to_have_attribute("data-tick", "double")
    # The picker is back to "pick a template" for the next one.
    expect(send).to_be_disabled()
    expect(page.locator("[data-template-fields] input")).to_have_count(0)
