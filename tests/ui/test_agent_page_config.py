"""The agent page takes its words and URLs from the server (issue #11 item 5): the
``json_script`` config, the server-rendered bubbles fragment, and native ES modules with no copy
of the server's labels or paths."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Membership
from inbox.views import presenters
from statuses import outbound, services
from statuses.machine import Status, Tick, tick_for
from statuses.providers.base import InboundMessage, SendOutcome, SendResult

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[2] / "static" / "inbox"
MODULES = sorted(STATIC.glob("*.js"))


def _client_for(account, username="ada"):
    user = get_user_model().objects.create_user(username=username, password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client


def _conversation(inbox, address="+16505076520"):
    inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[InboundMessage(address, f"in-{address}", "Hi!", timezone.now(), "Grace")],
    )
    return inbox.conversations.get(contact__address=address)


def _send(conversation, content="Hello", error_code=""):
    message, _ = outbound.message_create_outgoing(
        account=conversation.account,
        inbox=conversation.inbox,
        to=conversation.contact.address,
        content=content,
        conversation=conversation,
    )
    result = (
        SendResult(SendOutcome.REJECTED, error_code=error_code)
        if error_code
        else SendResult(SendOutcome.ACCEPTED, provider_message_id=f"wamid.{message.id}")
    )
    services.message_record_send_result(message_id=message.id, attempt=1, result=result)
    message.refresh_from_db()
    return message


def _page_config(response) -> dict:
    html = response.content.decode()
    found = re.search(r'<script id="agent-config" type="application/json">(.*?)</script>', html)
    assert found, "the page carries its config as json_script"
    return json.loads(found.group(1))


def test_page_config_is_the_servers_words_and_urls(account, inbox):
    conversation = _conversation(inbox)
    message = _send(conversation)
    response = _client_for(account).get(f"/conversations/{conversation.id}/")
    config = _page_config(response)
    assert config["labels"] == {str(s): label for s, label in presenters.STATUS_LABELS.items()}
    assert set(config["labels"]) == set(Status.values)
    assert set(config["meanings"]) == set(Tick.values)
    assert config["stages"] == presenters.STAGE_LABELS
    assert config["status_stage"] == {str(s): v for s, v in presenters.STATUS_STAGE.items()}
    # Every URL pattern, filled in, is the view the page means to call.
    urls = config["urls"]
    views = {
        "resend": (urls["resend"], message.id, "message_resend"),
        "events": (urls["events"], message.id, "message_events_json"),
        "messages": (urls["messages"], conversation.id, "conversation_messages_json"),
        "bubbles": (urls["bubbles"], conversation.id, "conversation_bubbles_fragment"),
        "read": (urls["read"], conversation.id, "conversation_mark_read"),
    }
    for name, (pattern, object_id, view) in views.items():
        assert pattern.count("{id}") == 1, name
        assert resolve(pattern.replace("{id}", str(object_id))).func.__name__ == view, name
    assert resolve(urls["list"]).func.__name__ == "conversation_list_fragment"
    assert resolve(urls["login"]).url_name == "login"
    assert urls["socket"] == "/ws/agent/"


def test_the_page_loads_modules_and_no_inline_script(account, inbox):
    conversation = _conversation(inbox)
    html = _client_for(account).get(f"/conversations/{conversation.id}/").content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        if 'type="application/json"' in attrs:
            continue  # data, not code
        assert 'type="module"' in attrs and "src=" in attrs and not body.strip(), attrs


def test_the_legend_is_the_servers_tick_meanings(account, inbox):
    html = _client_for(account).get("/").content.decode()
    for name, meaning in presenters.TICK_MEANINGS.values():
        assert f"<strong>{name}</strong> — {meaning}" in html.replace("&#x27;", "'")


def test_no_module_keeps_a_copy_of_the_servers_words_or_paths():
    assert {p.name for p in MODULES} >= {
        "main.js",
        "config.js",
        "ticks.js",
        "socket.js",
        "messages.js",
        "timeline.js",
        "compose.js",
        "clock.js",
    }
    words = {*presenters.STATUS_LABELS.values(), *presenters.STAGE_LABELS.values()}
    words |= {meaning for _, meaning in presenters.TICK_MEANINGS.values()}
    for path in MODULES:
        source = path.read_text()
        assert "agent.js" not in source
        for word in words:
            assert f'"{word}"' not in source, (path.name, word)
            assert f"'{word}'" not in source, (path.name, word)
        # URLs come from config.url(): no path to a view of ours is written in a module.
        for prefix in ("/conversations/", "/messages/", "/ws/", "/login/"):
            assert prefix not in source, (path.name, prefix)
        # Modules, not scripts: nothing hangs off window but the test hook in main.js.
        assert "window.tickmarkClock" not in source


def test_bubbles_fragment_is_the_servers_bubble_for_the_asked_messages(account, inbox):
    conversation = _conversation(inbox)
    first = _send(conversation, "First")
    failed = _send(conversation, "Second", error_code="131026")
    client = _client_for(account)
    url = f"/conversations/{conversation.id}/bubbles/"
    response = client.get(url, {"id": [str(failed.id), str(first.id), "not-a-uuid"]})
    assert response.status_code == 200
    html = response.content.decode()
    # Oldest first, each exactly as the conversation page renders it.
    assert html.index(str(first.id)) < html.index(str(failed.id))
    assert html.count('<li class="bubble') == 2
    assert "data-failure" in html and "131026" in html
    page = client.get(f"/conversations/{conversation.id}/").content.decode()
    for message in (first, failed):
        bubble = re.search(
            rf'<li class="bubble[^"]*" data-message-id="{message.id}".*?</li>', html, re.S
        )
        assert bubble and bubble.group(0).split("csrfmiddlewaretoken")[0] in page
    # Nothing asked, nothing answered; an id of another conversation is not shown.
    assert '<li class="bubble' not in client.get(url).content.decode()
    other = _conversation(inbox, "+16505076521")
    theirs = _send(other, "Elsewhere")
    assert str(theirs.id) not in client.get(url, {"id": str(theirs.id)}).content.decode()
    assert client.get(url, {"id": str(uuid.uuid4())}).status_code == 200


def test_bubbles_fragment_is_scoped_to_the_account(account, other_account, inbox):
    conversation = _conversation(inbox)
    message = _send(conversation)
    stranger = _client_for(other_account, "eve")
    url = f"/conversations/{conversation.id}/bubbles/"
    assert stranger.get(url, {"id": str(message.id)}).status_code == 404
    anonymous = Client().get(url, {"id": str(message.id)}, headers={"accept": "application/json"})
    assert anonymous.status_code == 401


# ---------------------------------------------------------------------------------------------
# In a real Chromium: what the page paints is the server's words, on load and live
# ---------------------------------------------------------------------------------------------


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_page_labels_are_the_servers_on_load_and_live(agent_page, inbox):
    from playwright.sync_api import expect

    from statuses.models import StatusEvent

    conversation = _conversation(inbox)
    sent = _send(conversation, "Sent one")
    failed = _send(conversation, "Failed one", error_code="131026")
    delivered = _send(conversation, "Delivered one")
    services.message_status_report(
        message=delivered, status="delivered", source=StatusEvent.Source.API
    )
    page = agent_page
    page.goto(f"/conversations/{conversation.id}/")
    expect(page.locator("[data-connection]")).to_have_text("Live")
    assert page.evaluate(
        "JSON.parse(document.getElementById('agent-config').textContent)"
    ) == json.loads(json.dumps(presenters.agent_config()))

    def check(message_id, status):
        tick = page.locator(f'li.bubble[data-message-id="{message_id}"] button.tick')
        label = presenters.STATUS_LABELS[status]
        expect(tick).to_have_attribute("title", re.compile(rf"^{re.escape(label)} \d\d:\d\d:\d\d$"))
        tick.hover()
        popover = page.get_by_role("tooltip")
        expect(popover.locator("strong").first).to_have_text(label)
        meaning = presenters.TICK_MEANINGS[Tick(tick_for(status))][1]
        expect(popover.locator("p").first).to_have_text(_sentence(meaning))
        page.mouse.move(5, 5)
        return popover

    check(sent.id, "sent")
    check(failed.id, "failed")
    popover = check(delivered.id, "delivered")
    delivered_stages = [presenters.STAGE_LABELS[s] for s in ("queued", "sent", "delivered")]
    page.locator(f'li.bubble[data-message-id="{delivered.id}"] button.tick').hover()
    expect(popover.locator(".stages li span")).to_have_text(delivered_stages)
    page.mouse.move(5, 5)

    # Live: a read report repaints the tick with the server's "read" words.
    services.message_status_report(message=sent, status="read", source=StatusEvent.Source.API)
    check(sent.id, "read")
    # Live: a new message arrives as the server's own bubble, labelled by the server.
    fresh = _send(conversation, "Fresh one")
    expect(page.locator(f'li.bubble[data-message-id="{fresh.id}"]')).to_contain_text("Fresh one")
    check(fresh.id, "sent")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_live_failure_and_a_live_reply_are_the_servers_bubbles(agent_page, inbox):
    from playwright.sync_api import expect

    conversation = _conversation(inbox)
    message, _ = outbound.message_create_outgoing(
        account=conversation.account,
        inbox=inbox,
        to=conversation.contact.address,
        content="Your order has shipped.",
        conversation=conversation,
    )
    page = agent_page
    page.goto(f"/conversations/{conversation.id}/")
    expect(page.locator("[data-connection]")).to_have_text("Live")
    bubble = page.locator(f'li.bubble[data-message-id="{message.id}"]')
    expect(bubble.locator("button.tick")).to_have_attribute("data-tick", "pending")
    expect(bubble.get_by_role("alert")).to_have_count(0)

    # The provider refuses it while the agent watches: the bubble becomes the server's failed
    # bubble, with the catalogue's explanation the live event itself does not carry.
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.REJECTED, error_code="131026", error_title="Undeliverable"),
    )
    message.refresh_from_db()
    failure = bubble.get_by_role("alert")
    expect(failure).to_contain_text("The number is not on WhatsApp")
    expect(failure).to_contain_text("What to do instead:")
    expect(bubble.locator("button.tick")).to_have_attribute("data-tick", "failed")
    expect(bubble).to_have_attribute("data-version", str(message.version))
    # Exactly the bubble the server renders on a page load (times aside, which the page paints).
    client = Client()
    client.force_login(get_user_model().objects.get(username="ada"))
    fragment = client.get(
        f"/conversations/{conversation.id}/bubbles/", {"id": str(message.id)}
    ).content.decode()
    assert page.locator("li.bubble").count() == 2
    same = bubble.locator("[data-failure]").evaluate(
        """(shown, html) => {
          const template = document.createElement("template");
          template.innerHTML = html;
          const expected = template.content.querySelector("[data-failure]");
          const mine = shown.cloneNode(true);
          // The CSRF token is masked afresh on every render.
          for (const input of [mine, expected].flatMap((n) => [...n.querySelectorAll("input")])) {
            input.removeAttribute("value");
          }
          return mine.isEqualNode(expected);
        }""",
        fragment,
    )
    assert same

    # The contact writes: the new bubble is the server's, added once.
    inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[
            InboundMessage(conversation.contact.address, "in-live", "Thanks!", timezone.now())
        ],
    )
    incoming = page.locator("li.bubble--incoming", has_text="Thanks!")
    expect(incoming).to_have_count(1)
    expect(incoming.locator("time")).to_have_attribute("data-clock", "time")
