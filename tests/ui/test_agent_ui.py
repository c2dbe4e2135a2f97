"""The agent's day in the inbox (issue #17), in a real Chromium against a real daphne.

Layout that holds for any content, one local clock, the character counter, sending offline,
starting a conversation, search and filters, the tick popover and legend, the phone layout, and
the API docs with the network blocked.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inbox import services as inbox_services
from inbox.models import Conversation, Message
from statuses import outbound, services
from statuses.models import StatusEvent
from statuses.providers.base import InboundMessage, SendOutcome, SendResult, StatusUpdate
from tests.ui.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LA = ZoneInfo("America/Los_Angeles")
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def page_for(browser, live_url, agent):
    """A signed-in page with a chosen time zone and viewport."""
    from django.test import Client

    contexts = []

    def make(timezone_id="UTC", width=1200, height=760, mobile=False):
        client = Client()
        client.force_login(agent)
        context = browser.new_context(
            base_url=live_url,
            viewport={"width": width, "height": height},
            timezone_id=timezone_id,
            locale="en-US",
            is_mobile=mobile,
            has_touch=mobile,
        )
        context.set_default_timeout(10_000)
        context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_url}]
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _inbound(inbox, address="+16505076520", text="Hi!", name="Grace Hopper", at=None):
    inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[
            InboundMessage(address, f"wamid.IN{time.time_ns()}", text, at or timezone.now(), name)
        ],
    )
    return inbox.conversations.get(contact__address=address)


def _outgoing(conversation, content="Your order has shipped.", wamid=None, error_code=""):
    message, _ = outbound.message_create_outgoing(
        account=conversation.account,
        inbox=conversation.inbox,
        to=conversation.contact.address,
        content=content,
        conversation=conversation,
    )
    if error_code:
        result = SendResult(SendOutcome.REJECTED, error_code=error_code)
    else:
        result = SendResult(
            SendOutcome.ACCEPTED, provider_message_id=wamid or f"wamid.{message.id}"
        )
    services.message_record_send_result(message_id=message.id, attempt=1, result=result)
    message.refresh_from_db()
    return message


def _la(moment, fmt="%H:%M"):
    return moment.astimezone(LA).strftime(fmt)


def _no_horizontal_scroll(page):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page scrolls sideways: {width}"


def _in_viewport(page, locator):
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box


# --- 1. long unbroken strings -------------------------------------------------------------


def test_a_4096_character_word_wraps_and_the_layout_holds(page_for, inbox):
    long_word = "A" * 4096
    url = "https://example.com/" + "x" * 600 + "?q=" + "y" * 400
    conversation = _inbound(inbox, text=long_word, name="B" * 199)
    _outgoing(conversation, content=url)
    page = page_for()
    for _ in range(2):  # and it survives a reload
        page.goto(f"/conversations/{conversation.id}/")
        _no_horizontal_scroll(page)
        bubbles = page.locator("li.bubble")
        expect(bubbles).to_have_count(2)
        container = page.locator("[data-messages]").bounding_box()
        for i in range(2):
            box = bubbles.nth(i).bounding_box()
            assert box["width"] <= container["width"], (box, container)
        _in_viewport(page, page.get_by_role("button", name="Send"))
        _in_viewport(page, page.get_by_role("button", name="Sign out ada"))
        # The sidebar keeps its width: the long contact name is cut with an ellipsis.
        assert page.locator(".sidebar").bounding_box()["width"] <= 341
    page.screenshot(path=str(ARTIFACTS / "long-word.png"))


# --- 2. one clock ---------------------------------------------------------------------------


def test_one_local_clock_in_a_non_utc_browser(page_for, inbox):
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    conversation = _inbound(inbox, text="Yesterday's question")
    inbound = conversation.messages.get()
    Message.objects.filter(id=inbound.id).update(created_at=yesterday)
    sent = _outgoing(conversation, content="Today's answer")
    # Activity later than the last message: the list must show the message's time.
    Conversation.objects.filter(id=conversation.id).update(last_message_at=now + timedelta(hours=3))
    page = page_for("America/Los_Angeles")
    page.goto(f"/conversations/{conversation.id}/")

    # Server-rendered bubbles: the browser's local time (UTC would differ by 7–8 hours).
    inbound_time = page.locator(f'li.bubble[data-message-id="{inbound.id}"] time')
    expect(inbound_time).to_have_text(_la(yesterday))
    sent_bubble = page.locator(f'li.bubble[data-message-id="{sent.id}"]')
    expect(sent_bubble.locator("time")).to_have_text(_la(sent.created_at))
    # Full date on hover, in the same zone.
    title = sent_bubble.locator("time").get_attribute("title")
    assert _la(sent.created_at, "%B %-d, %Y") in title and _la(sent.created_at, "%Z") in title
    # Day separators in local days ("Yesterday", "Today").
    expect(page.locator("[data-day]")).to_have_text(["Yesterday", "Today"])
    # The tick tooltip: same clock, with seconds.
    expect(sent_bubble.locator("button.tick")).to_have_attribute(
        "title", f"Sent {_la(sent.sent_at, '%H:%M:%S')}"
    )
    # The list shows the last message's time, not the conversation's activity time.
    list_time = page.locator(f'li.conv[data-conversation-id="{conversation.id}"] time')
    expect(list_time).to_have_text(_la(sent.created_at))

    # A live bubble (sent now from the page) uses the same clock.
    page.get_by_label("Message", exact=True).fill("Sent live")
    page.get_by_role("button", name="Send").click()
    live = page.locator("li.bubble--outgoing", has_text="Sent live")
    expect(live.locator("button.tick")).to_have_attribute("data-tick", "pending")
    message = Message.objects.get(content="Sent live")
    expect(live.locator("time")).to_have_text(_la(message.created_at))
    assert _la(message.created_at, "%B %-d, %Y") in live.locator("time").get_attribute("title")

    # The history dialog: provider and received time, same clock, with seconds.
    sent_bubble.locator("button.tick").click()
    dialog = page.get_by_role("dialog", name="Status history")
    event = StatusEvent.objects.get(message=sent)
    row = dialog.locator("tbody tr[data-event]").first
    expect(row.locator("td").nth(1)).to_have_text(f"Today {_la(event.occurred_at, '%H:%M:%S')}")
    expect(row.locator("td").nth(2)).to_have_text(f"Today {_la(event.received_at, '%H:%M:%S')}")
    expect(row.locator("td").first).to_contain_text("Accepted by WhatsApp")


# --- 6. character counter -------------------------------------------------------------------


def test_counter_shows_the_channel_limit_and_one_clear_message(page_for, inbox, make_inbox):
    conversation = _inbound(inbox)
    page = page_for()
    page.goto(f"/conversations/{conversation.id}/")
    textarea = page.get_by_label("Message", exact=True)
    counter = page.locator("[data-counter]")
    expect(counter).to_have_text("0 / 4,096")
    textarea.fill("Hello")
    expect(counter).to_have_text("5 / 4,096")
    textarea.fill("A" * 10_000)
    expect(counter).to_have_text("Too long: 10,000 / 4,096 characters")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    textarea.press("Enter")
    assert not Message.objects.filter(direction="outgoing").exists()
    textarea.fill("Short again")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    # SMS via Twilio takes 1,600 characters.
    sms = make_inbox(conversation.account, "twilio_sms")
    sms_conversation = _inbound(sms, address="+14155550100", name="Alan")
    page.goto(f"/conversations/{sms_conversation.id}/")
    expect(page.locator("[data-counter]")).to_have_text("0 / 1,600")


# --- 7. sending while offline ---------------------------------------------------------------


def test_a_send_that_cannot_reach_tickmark_says_so_and_retries(page_for, inbox):
    conversation = _inbound(inbox)
    page = page_for()
    page.goto(f"/conversations/{conversation.id}/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    page.context.set_offline(True)
    page.get_by_label("Message", exact=True).fill("Written on a train")
    page.get_by_role("button", name="Send").click()
    unsent = page.locator("li.bubble--unsent", has_text="Written on a train")
    expect(unsent.get_by_role("alert")).to_contain_text("Not sent: Tickmark could not be reached.")
    assert not Message.objects.filter(content="Written on a train").exists()

    unsent.get_by_role("button", name="Retry").click()  # still offline
    expect(unsent).to_contain_text("Still unreachable")
    assert not Message.objects.filter(content="Written on a train").exists()

    page.context.set_offline(False)
    unsent.get_by_role("button", name="Retry").click()
    expect(unsent).to_have_count(0)
    message = Message.objects.get(content="Written on a train")
    bubble = page.locator(f'li.bubble[data-message-id="{message.id}"]')
    expect(bubble.locator("button.tick")).to_have_attribute("data-tick", "pending")
    assert Message.objects.filter(content="Written on a train").count() == 1


def test_a_retry_after_a_lost_answer_does_not_send_twice(page_for, inbox):
    conversation = _inbound(inbox)
    page = page_for()
    page.goto(f"/conversations/{conversation.id}/")

    def lose_the_answer(route):
        route.fetch()  # the request reaches Tickmark and the message is created…
        route.abort()  # …but the answer never reaches the browser

    page.route("**/send/", lose_the_answer)
    page.get_by_label("Message", exact=True).fill("Only once, please")
    page.get_by_role("button", name="Send").click()
    unsent = page.locator("li.bubble--unsent", has_text="Only once, please")
    expect(unsent).to_be_visible()
    assert Message.objects.filter(content="Only once, please").count() == 1

    page.unroute("**/send/")
    unsent.get_by_role("button", name="Retry").click()
    expect(unsent).to_have_count(0)
    message = Message.objects.get(content="Only once, please")
    expect(page.locator(f'li.bubble[data-message-id="{message.id}"]')).to_have_count(1)
    assert Message.objects.filter(content="Only once, please").count() == 1
    assert message.customer_message_id.startswith("agent-ui:")


# --- 9. start a conversation ----------------------------------------------------------------


def test_start_a_conversation_from_the_ui(page_for, inbox, make_inbox, account):
    sms = make_inbox(account, "twilio_sms")
    page = page_for()
    page.goto("/")
    page.get_by_role("button", name="New conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    # WhatsApp: a new contact has no open 24-hour window, so a template is asked for.
    dialog.get_by_label("Inbox").select_option(label=f"{inbox.name} (WhatsApp Cloud API)")
    expect(dialog.get_by_label("Template name")).to_be_visible()
    expect(dialog.get_by_label("First message")).to_be_hidden()
    dialog.get_by_label("To").fill("0000")
    dialog.get_by_label("Template name").fill("hello_world")
    dialog.get_by_role("button", name="Start conversation").click()
    expect(dialog.get_by_role("alert")).to_contain_text("international format")
    page.screenshot(path=str(ARTIFACTS / "start-conversation.png"))
    assert not Message.objects.exists()

    dialog.get_by_label("To").fill("+14155550123")
    dialog.get_by_role("button", name="Start conversation").click()
    expect(page).to_have_url(re.compile(r"/conversations/\d+/$"))
    message = Message.objects.get()
    assert (message.to_address, message.template["name"]) == ("+14155550123", "hello_world")
    bubble = page.locator(f'li.bubble[data-message-id="{message.id}"]')
    expect(bubble).to_contain_text("hello_world")

    # SMS: free text, no template.
    page.get_by_role("button", name="New conversation").click()
    dialog.get_by_label("Inbox").select_option(label=f"{sms.name} (SMS via Twilio)")
    expect(dialog.get_by_label("Template name")).to_be_hidden()
    dialog.get_by_label("To").fill("+14155550199")
    dialog.get_by_label("First message").fill("Your table is ready.")
    dialog.get_by_role("button", name="Start conversation").click()
    expect(page.locator("li.bubble", has_text="Your table is ready.")).to_be_visible()
    sent = Message.objects.get(content="Your table is ready.")
    assert (sent.inbox_id, sent.to_address) == (sms.id, "+14155550199")
    expect(page.locator("h1")).to_have_text("+14155550199")


# --- 10. search and filters -----------------------------------------------------------------


def test_search_and_filters_narrow_the_conversation_list(page_for, inbox, make_inbox, account):
    grace = _inbound(inbox, address="+16505070001", name="Grace Hopper", text="Hello")
    _outgoing(grace, content="Sorry", error_code="131026")
    Conversation.objects.filter(id=grace.id).update(unread_count=0)
    sms = make_inbox(account, "twilio_sms")
    alan = _inbound(sms, address="+14155550002", name="Alan Turing", text="About invoice 42")
    Conversation.objects.filter(id=alan.id).update(unread_count=0)
    ada = _inbound(inbox, address="+16505070003", name="Ada Lovelace", text="Are you there?")

    page = page_for()
    page.goto("/")
    names = page.locator("li.conv .conv-contact")
    expect(names).to_have_count(3)
    search = page.get_by_role("searchbox")
    search.fill("invoice")  # message text
    expect(names).to_have_text(["Alan Turing"])
    search.fill("grace")  # contact name
    expect(names).to_have_text(["Grace Hopper"])
    search.fill("70003")  # contact address
    expect(names).to_have_text(["Ada Lovelace"])
    search.fill("nobody here")
    expect(page.locator("li.conv--empty")).to_have_text("No conversation matches.")
    search.fill("")
    expect(names).to_have_count(3)

    page.get_by_role("checkbox", name="Has failed").check()
    expect(names).to_have_text(["Grace Hopper"])
    page.get_by_role("checkbox", name="Has failed").uncheck()
    page.get_by_role("checkbox", name="Unread").check()
    expect(names).to_have_text(["Ada Lovelace"])
    page.get_by_role("checkbox", name="Unread").uncheck()
    page.get_by_label("Channel").select_option("sms")
    expect(names).to_have_text(["Alan Turing"])
    # The filters are in the address: a reload keeps them (and works without script).
    page.reload()
    expect(names).to_have_text(["Alan Turing"])
    expect(page.get_by_label("Channel")).to_have_value("sms")
    assert ada  # three conversations, three different matches


# --- 11. tick legend and popover ------------------------------------------------------------


def test_tick_popover_and_legend_inside_a_conversation(page_for, inbox):
    conversation = _inbound(inbox)
    message = _outgoing(conversation, wamid="wamid.POP")
    delivered_at = timezone.now()
    services.status_updates_apply(
        inbox=inbox,
        updates=[StatusUpdate("wamid.POP", "delivered", "delivered", delivered_at, "pop:d")],
    )
    message.refresh_from_db()
    page = page_for()
    page.goto(f"/conversations/{conversation.id}/")
    tick = page.locator(f'li.bubble[data-message-id="{message.id}"] button.tick')
    tick.hover()
    popover = page.get_by_role("tooltip")
    expect(popover).to_be_visible()
    expect(popover).to_contain_text("It reached the contact's device.")
    expect(popover.locator(".stages li")).to_contain_text(["Queued", "Sent", "Delivered"])
    expect(popover.locator(".stages li").nth(2).locator("time")).to_have_text(
        f"Today {timezone.localtime(message.delivered_at, ZoneInfo('UTC')):%H:%M:%S}"
    )
    page.mouse.move(5, 5)
    expect(popover).to_be_hidden()
    # Keyboard users get it on focus too.
    tick.focus()
    expect(popover).to_be_visible()

    page.get_by_label("What the ticks mean").click()
    legend = page.locator("[data-legend] .legend-list li")
    expect(legend).to_have_count(5)
    expect(legend.nth(2)).to_contain_text("Delivered — it reached the contact's device.")


# --- 12. phones -----------------------------------------------------------------------------


def test_390_px_is_one_column_with_a_back_button_and_no_sideways_scroll(page_for, inbox):
    conversation = _inbound(inbox, text="W" * 2000)
    _outgoing(conversation, content="x" * 3000)
    page = page_for(width=390, height=844, mobile=True)
    page.goto("/")
    expect(page.locator(".sidebar")).to_be_visible()
    expect(page.locator("main")).to_be_hidden()
    _no_horizontal_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "mobile-home.png"))

    page.locator("li.conv a").first.click()
    expect(page).to_have_url(
        f"{page.url.split('/conversations')[0]}/conversations/{conversation.id}/"
    )
    expect(page.locator(".sidebar")).to_be_hidden()
    back = page.get_by_role("link", name="Back to conversations")
    expect(back).to_be_visible()
    _no_horizontal_scroll(page)
    _in_viewport(page, page.get_by_role("button", name="Send"))
    page.screenshot(path=str(ARTIFACTS / "mobile-conversation.png"))

    page.locator("li.bubble--outgoing button.tick").click()
    expect(page.get_by_role("dialog", name="Status history")).to_be_visible()
    _no_horizontal_scroll(page)
    page.keyboard.press("Escape")

    back.click()
    expect(page.locator(".sidebar")).to_be_visible()
    _no_horizontal_scroll(page)


# --- 16. API docs offline -------------------------------------------------------------------


def test_api_docs_load_with_the_network_blocked(browser, live_url):
    context = browser.new_context(base_url=live_url)
    blocked: list[str] = []

    def only_local(route):
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", only_local)
        page = context.new_page()
        page.goto("/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Tickmark API")
        expect(page.locator(".opblock").first).to_be_visible()
        assert blocked == [], blocked
        assert all(
            "/static/" in src
            for src in page.eval_on_selector_all(
                "script[src]",
                "els => els.map((e) => e.src).filter((s) => !s.includes('/api/docs/'))",
            )
        )
    finally:
        context.close()


# --- screenshots for docs/ ------------------------------------------------------------------


def test_screenshots(page_for, inbox, make_inbox, account):
    """Screenshots of the inbox, a failure, the history dialog and the phone view.

    Written to test-artifacts/ on every run; copied into docs/ with TICKMARK_SCREENSHOTS=1.
    """
    grace = _inbound(
        inbox, address="+16505076520", name="Grace Hopper", text="Is my order on its way?"
    )
    shipped = _outgoing(grace, content="Yes! It left the warehouse this morning.", wamid="wamid.S1")
    now = timezone.now()
    for status, delay, key in (("read", 9, "r"), ("delivered", 2, "d"), ("delivered", 2, "d")):
        services.status_updates_apply(
            inbox=inbox,
            updates=[StatusUpdate("wamid.S1", status, status, now + timedelta(seconds=delay), key)],
        )
    _outgoing(grace, content="Tracking: https://example.com/track/" + "Z" * 80, error_code="131026")
    sms = make_inbox(account, "twilio_sms", account_sid="AC" + "0" * 32, auth_token="t" * 32)
    alan = _inbound(sms, address="+14155550002", name="Alan Turing", text="Can I move my booking?")
    _outgoing(alan, content="Of course — which day suits you?")
    _inbound(inbox, address="+16505070003", name="Ada Lovelace", text="Thanks, received.")

    page = page_for("Europe/Paris", width=1280, height=800)
    page.goto(f"/conversations/{grace.id}/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    shots = {"screenshot": page.screenshot(path=str(ARTIFACTS / "inbox-main.png"))}
    page.locator(f'li.bubble[data-message-id="{shipped.id}"] button.tick').click()
    expect(page.locator("tbody tr[data-event]")).not_to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "history-dialog.png"))
    page.keyboard.press("Escape")
    page.goto("/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    page.screenshot(path=str(ARTIFACTS / "inbox-list.png"))

    phone = page_for("Europe/Paris", width=390, height=844, mobile=True)
    phone.goto(f"/conversations/{grace.id}/")
    expect(phone.locator("li.bubble--failed")).to_be_visible()
    expect(phone.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    phone.screenshot(path=str(ARTIFACTS / "mobile.png"))

    assert shots
    if os.environ.get("TICKMARK_SCREENSHOTS") == "1":
        for source, target in [
            ("inbox-main", "screenshot"),
            ("inbox-main", "conversation-failure"),
            ("history-dialog", "history-dialog"),
            ("inbox-list", "inbox"),
            ("mobile", "mobile"),
        ]:
            shutil.copy(ARTIFACTS / f"{source}.png", DOCS / f"{target}.png")
