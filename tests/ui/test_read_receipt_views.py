"""The agent view's side of read receipts (issue #14 part 2): opening a conversation marks its
inbound messages read by the agent (a "Seen" mark) and owes the provider one receipt; in a real
Chromium, the provider simulator then answers it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from inbox.models import Membership, Message
from statuses.models import ReadReceipt
from statuses.simulator.server import ProviderSimulator, Scenario
from tests.statuses.read_receipt_support import (
    make_receipt_inbox,
    receipt_tasks,
    receive,
)


def _client_for(account, username="ada"):
    user = get_user_model().objects.create_user(username=username, password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_opening_a_conversation_marks_it_seen_and_owes_one_receipt(account, inbox, make_message):
    messages = receive(inbox, 2)
    conversation = messages[0].conversation
    make_message(inbox)
    client = _client_for(account)

    html = client.get(f"/conversations/{conversation.id}/").content.decode()

    incoming = re.findall(r'<li class="bubble bubble--incoming.*?</li>', html, re.S)
    outgoing = re.findall(r'<li class="bubble bubble--outgoing.*?</li>', html, re.S)
    assert len(incoming) == 2 and all("data-seen" in li for li in incoming)
    assert outgoing and not any("data-seen" in li for li in outgoing)
    assert ReadReceipt.objects.get().message_id == messages[-1].id
    assert receipt_tasks().count() == 1

    client.get(f"/conversations/{conversation.id}/")
    assert receipt_tasks().count() == 1  # reopening owes nothing new


@pytest.mark.django_db
def test_a_new_message_is_not_seen_until_the_page_marks_it_read(account, inbox):
    conversation = receive(inbox, 1)[0].conversation
    client = _client_for(account)
    client.get(f"/conversations/{conversation.id}/")
    (later,) = receive(inbox, 1, start=1)
    bubble = client.get(f"/conversations/{conversation.id}/bubbles/?id={later.id}").content
    assert b"data-seen" not in bubble

    answer = client.post(f"/conversations/{conversation.id}/read/")

    assert answer.status_code == 200
    later.refresh_from_db()
    assert later.read_by_agent_at is not None
    assert receipt_tasks().count() == 2
    bubble = client.get(f"/conversations/{conversation.id}/bubbles/?id={later.id}").content
    assert b"data-seen" in bubble


@pytest.mark.django_db
def test_another_accounts_conversation_is_404_and_stays_unread(account, other_account, inbox):
    conversation = receive(inbox, 1)[0].conversation
    stranger = _client_for(other_account, "mallory")
    assert stranger.get(f"/conversations/{conversation.id}/").status_code == 404
    assert stranger.post(f"/conversations/{conversation.id}/read/").status_code == 404
    assert not Message.objects.filter(read_by_agent_at__isnull=False).exists()
    assert not receipt_tasks().exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_agent_opens_a_whatsapp_conversation_and_the_simulator_gets_the_receipt(
    account, agent_page, run_tasks
):
    with ProviderSimulator(scenario=Scenario.instant()) as simulator:
        inbox = make_receipt_inbox(account, "whatsapp_cloud", "")
        inbox.config["api_base_url"] = simulator.base_url("whatsapp_cloud", inbox.id)
        inbox.save(update_fields=["config"])
        messages = receive(inbox, 2)
        page = agent_page

        page.goto(f"/conversations/{messages[0].conversation_id}/")

        seen = page.locator("li.bubble--incoming [data-seen]")
        expect(seen).to_have_count(2)
        expect(seen.first).to_have_text("Seen")
        run_tasks()
        (call,) = [s for s in simulator.sends if s.json().get("status") == "read"]
        assert call.json()["message_id"] == messages[-1].provider_message_id
        assert call.status == 200
        assert ReadReceipt.objects.get().state == "sent"

        # A message arriving while the agent looks at the conversation is seen at once.
        (later,) = receive(inbox, 1, start=2)
        expect(page.locator(f'li.bubble[data-message-id="{later.id}"] [data-seen]')).to_have_count(
            1
        )
        run_tasks()
        reads = [s.json()["message_id"] for s in simulator.sends if s.json().get("status")]
        assert reads == [messages[-1].provider_message_id, later.provider_message_id]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_message_that_arrives_before_the_socket_opens_is_seen_too(account, agent_page, run_tasks):
    """The page is drawn, then its script opens the socket: a message that comes in between
    reaches no socket, and the page learns of it by the connect's re-read. The agent has the
    conversation in front of them, so it is read like one a live event brought."""
    with ProviderSimulator(scenario=Scenario.instant()) as simulator:
        inbox = make_receipt_inbox(account, "whatsapp_cloud", "")
        inbox.config["api_base_url"] = simulator.base_url("whatsapp_cloud", inbox.id)
        inbox.save(update_fields=["config"])
        (first,) = receive(inbox, 1)
        page = agent_page
        held = []
        page.route(re.compile(r"/inbox/main(\.[0-9a-f]+)?\.js"), lambda route: held.append(route))
        page.goto(f"/conversations/{first.conversation_id}/", wait_until="commit")
        expect(page.locator("li.bubble--incoming [data-seen]")).to_have_count(1)
        while not held:
            page.wait_for_timeout(20)
        (later,) = receive(inbox, 1, start=1)
        held[0].continue_()

        expect(page.locator("[data-connection]")).to_have_text("Live")
        expect(page.locator(f'li.bubble[data-message-id="{later.id}"] [data-seen]')).to_have_count(
            1
        )
        later.refresh_from_db()
        assert later.read_by_agent_at is not None
        run_tasks()
        reads = [s.json()["message_id"] for s in simulator.sends if s.json().get("status")]
        assert reads == [first.provider_message_id, later.provider_message_id]
