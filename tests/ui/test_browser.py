"""The agent UI and the contact widget in a real Chromium, against a real daphne (DESIGN §9)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox import services as inbox_services
from inbox.models import Message
from statuses import outbound, services
from statuses.providers.base import InboundMessage, SendOutcome, SendResult

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every tick a message shows, so fast transitions are seen even between two polls.
RECORD_TICKS = """
window.__ticks = [];
const scan = () => {
  for (const button of document.querySelectorAll("li.bubble--outgoing button.tick")) {
    const last = window.__ticks.filter((t) => t.id === button.dataset.messageId).pop();
    if (!last || last.tick !== button.dataset.tick) {
      window.__ticks.push({ id: button.dataset.messageId, tick: button.dataset.tick });
    }
  }
};
scan();
new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, attributes: true });
"""


def _ticks_of(page, message_id):
    return [t["tick"] for t in page.evaluate("window.__ticks") if t["id"] == message_id]


def _bubble(page, message_id):
    return page.locator(f'li.bubble[data-message-id="{message_id}"]')


def _whatsapp_conversation(inbox, address="+16505076520", name="Grace Hopper"):
    """A WhatsApp conversation with an open 24-hour window."""
    inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[InboundMessage(address, f"wamid.IN{time.time_ns()}", "Hi!", timezone.now(), name)],
    )
    return inbox.conversations.get(contact__address=address)


def _sent_message(conversation, wamid, content="Your order has shipped."):
    message, _ = outbound.message_create_outgoing(
        account=conversation.account,
        inbox=conversation.inbox,
        to=conversation.contact.address,
        content=content,
        conversation=conversation,
    )
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id=wamid),
    )
    message.refresh_from_db()
    return message


def _signed_whatsapp_webhook(live_url, inbox, statuses):
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


def _wa_status(wamid, status, recipient="16505076520", **extra):
    return {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
        **extra,
    }


def test_agent_reply_reaches_the_widget_and_ticks_follow(
    new_page, agent, account, make_inbox, run_tasks, screenshot, live_url
):
    widget_inbox = make_inbox(account, "web_widget", title="Chat with Acme")

    # The agent signs in through the login form and waits on the conversation list.
    agent_page = new_page()
    agent_page.goto("/")
    expect(agent_page).to_have_url(re.compile(r"/login/\?next=/$"))
    agent_page.get_by_label("Username").fill("ada")
    agent_page.get_by_label("Password").fill("lovelace-123")
    agent_page.get_by_label("Password").press("Enter")
    expect(agent_page.locator("[data-connection]")).to_have_attribute("data-connection", "live")

    # A visitor starts a chat in the widget and writes; the agent's list shows it live.
    widget = new_page()
    widget.goto(f"/widget/{widget_inbox.id}/")
    widget.get_by_label("Your name").fill("Wendy Visitor")
    widget.get_by_role("button", name="Start chat").click()
    widget.get_by_label("Message").fill("Hello, is anyone there?")
    widget.get_by_label("Message").press("Enter")
    expect(widget.locator(".w-bubble--contact")).to_have_text(re.compile("Hello, is anyone"))
    assert widget.evaluate(f"localStorage.getItem('tickmark.widget.{widget_inbox.id}')")

    conversation_link = agent_page.locator(".conv", has_text="Wendy Visitor")
    expect(conversation_link.locator(".unread")).to_have_text("1")
    conversation_link.get_by_role("link").click()
    expect(agent_page.locator("li.bubble--incoming")).to_have_text(re.compile("Hello, is anyone"))
    expect(agent_page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    agent_page.evaluate(RECORD_TICKS)

    # The agent replies with Enter: queued (clock) until the worker sends it.
    compose = agent_page.get_by_label("Message", exact=True)
    compose.fill("Hi Wendy! How can I help?")
    compose.press("Enter")
    outgoing = agent_page.locator("li.bubble--outgoing").last
    tick = outgoing.locator("button.tick")
    expect(tick).to_have_attribute("data-tick", "pending")
    expect(tick.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^Queued "))
    message_id = outgoing.get_attribute("data-message-id")

    # The worker sends; the widget receives it live, acks it and (visible) reads it.
    run_tasks()
    expect(widget.locator(".w-bubble--agent", has_text="How can I help?")).to_be_visible()
    expect(tick).to_have_attribute("data-tick", "blue")
    expect(tick.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^Read \d"))
    assert _ticks_of(agent_page, message_id) == ["pending", "single", "double", "blue"]
    message = Message.objects.get(id=message_id)
    assert (message.status, message.read_at is not None) == ("read", True)
    screenshot(agent_page, "conversation-view")
    screenshot(widget, "widget")

    # The tick opens the status timeline from the keyboard.
    tick.focus()
    agent_page.keyboard.press("Enter")
    dialog = agent_page.get_by_role("dialog", name="Status history")
    expect(dialog).to_be_visible()
    expect(dialog.locator("tbody tr")).to_have_count(3)
    expect(dialog).to_contain_text("Web widget")
    expect(dialog).to_contain_text("Send response")
    screenshot(agent_page, "status-timeline")
    agent_page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_signed_whatsapp_webhook_turns_the_tick_blue(
    agent_page, make_inbox, account, live_url, screenshot
):
    inbox = make_inbox(account)
    conversation = _whatsapp_conversation(inbox)
    message = _sent_message(conversation, "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI")

    agent_page.goto(f"/conversations/{conversation.id}/")
    tick = _bubble(agent_page, message.id).locator("button.tick")
    expect(tick).to_have_attribute("data-tick", "single")
    expect(agent_page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    agent_page.evaluate(RECORD_TICKS)

    wamid = message.provider_message_id
    _signed_whatsapp_webhook(live_url, inbox, [_wa_status(wamid, "delivered")])
    expect(tick).to_have_attribute("data-tick", "double")
    _signed_whatsapp_webhook(live_url, inbox, [_wa_status(wamid, "read")])
    expect(tick).to_have_attribute("data-tick", "blue")
    expect(tick).to_have_attribute("title", re.compile(r"^Read \d\d:\d\d:\d\d$"))
    # The list shows the same tick for the conversation's last message.
    expect(agent_page.locator(f'.conv-tick[data-message-id="{message.id}"]')).to_have_attribute(
        "data-tick", "blue"
    )
    assert _ticks_of(agent_page, str(message.id)) == ["single", "double", "blue"]
    screenshot(agent_page, "whatsapp-read")


def test_failed_message_explains_itself_and_resend_sends_it(
    agent_page, make_inbox, account, run_tasks, screenshot
):
    from tests.fakes.recorder import RecordingServer, Reply

    with RecordingServer() as provider:
        provider.default_reply = Reply(
            200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.RESENT"}]}
        )
        inbox = make_inbox(account, api_base_url=provider.url)
        conversation = _whatsapp_conversation(inbox)

        def failed(content, code, title):
            message, _ = outbound.message_create_outgoing(
                account=account,
                inbox=inbox,
                to=conversation.contact.address,
                content=content,
                conversation=conversation,
            )
            services.message_record_send_result(
                message_id=message.id,
                attempt=1,
                result=SendResult(SendOutcome.REJECTED, error_code=code, error_title=title),
            )
            return message

        message = failed("We could not reach you.", "131026", "Message undeliverable")
        # 131000 "Something went wrong" is marked retryable in the catalogue.
        retryable = failed("Second try.", "131000", "Something went wrong")

        agent_page.goto(f"/conversations/{conversation.id}/")
        bubble = _bubble(agent_page, message.id)
        failure = bubble.get_by_role("alert")
        expect(failure).to_contain_text("Message undeliverable")
        expect(failure).to_contain_text("(131026)")
        expect(failure).to_contain_text("The number is not on WhatsApp")
        expect(failure).to_contain_text("resending the same message will not help")
        expect(bubble.locator("button.tick")).to_have_attribute("data-tick", "failed")
        expect(bubble.get_by_role("img", name=re.compile("^Failed"))).to_be_visible()
        # The catalogue says a resend fails the same way: no Resend button, what to do instead.
        expect(bubble.get_by_role("button", name="Resend")).to_have_count(0)
        expect(failure).to_contain_text("What to do instead:")
        expect(failure).to_contain_text("Resending will not help with this error.")
        screenshot(agent_page, "failed-message")

        bubble = _bubble(agent_page, retryable.id)
        failure = bubble.get_by_role("alert")
        bubble.get_by_role("button", name="Resend").click()
        expect(bubble.locator("button.tick")).to_have_attribute("data-tick", "pending")
        expect(failure).to_have_count(0)
        expect(bubble.locator("[data-attempt]")).to_have_text("attempt 2")
        run_tasks()
        expect(bubble.locator("button.tick")).to_have_attribute("data-tick", "single")
        retryable.refresh_from_db()
        assert (retryable.status, retryable.attempt) == ("sent", 2)
        assert retryable.provider_message_id == "wamid.RESENT"
        # One message send; opening the page also told WhatsApp the contact's message was read.
        sends = [r for r in provider.requests if r.json().get("status") != "read"]
        assert len(sends) == 1
        assert len(provider.requests) == 2


def test_ticks_are_current_after_the_socket_drops_and_reconnects(
    agent_page, make_inbox, account, live_url
):
    inbox = make_inbox(account)
    conversation = _whatsapp_conversation(inbox)
    message = _sent_message(conversation, "wamid.RECONNECT1")
    sockets = []
    agent_page.on("websocket", lambda ws: sockets.append(ws))

    agent_page.goto(f"/conversations/{conversation.id}/")
    tick = _bubble(agent_page, message.id).locator("button.tick")
    connection = agent_page.locator("[data-connection]")
    expect(connection).to_have_attribute("data-connection", "live")
    expect(tick).to_have_attribute("data-tick", "single")

    # The socket drops; the read arrives while nobody listens (the broadcast is lost) …
    agent_page.evaluate("tickmark.socket.close()")
    expect(connection).to_have_attribute("data-connection", "offline")
    _signed_whatsapp_webhook(live_url, inbox, [_wa_status("wamid.RECONNECT1", "read")])
    expect(tick).to_have_attribute("data-tick", "single")
    # … and the reconnect re-reads the current statuses.
    expect(connection).to_have_attribute("data-connection", "live")
    expect(tick).to_have_attribute("data-tick", "blue")
    assert len(sockets) == 2
