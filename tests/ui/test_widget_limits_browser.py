"""The widget in a real Chromium when its address is over the start limit (issue #10 item 7).

The limit is reached from this test process and refused by the daphne subprocess: the counter
lives in the shared Redis cache, so every process sees the same count.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from inbox import ratelimit
from inbox.models import Contact
from tests.conftest import wait_for_fresh_window

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_widget_says_why_a_chat_cannot_start(live_url, new_page, account, make_inbox):
    widget_inbox = make_inbox(account, "web_widget", title="Chat with Acme")
    wait_for_fresh_window(60, margin=15)
    rate = ratelimit.rate_setting("TICKMARK_WIDGET_START_RATE")  # the server's default too
    for _ in range(rate.limit):
        assert ratelimit.hit("widget_start", "127.0.0.1", rate).allowed

    page = new_page()
    page.goto(f"/widget/{widget_inbox.id}/")
    page.get_by_label("Your name").fill("Mallory")
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_role("status")).to_contain_text("Too many chats started. Try again in")
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    assert not Contact.objects.filter(inbox=widget_inbox).exists()
