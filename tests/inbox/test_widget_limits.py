"""Widget abuse over HTTP (issue #10 item 7): chats started per address and per inbox, messages
per contact and per address, answered with a JSON 429 and counted in the shared cache."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from inbox.models import Contact, Conversation, Message
from tests.conftest import wait_for_fresh_window

pytestmark = pytest.mark.django_db

JSON = {"content_type": "application/json"}


@pytest.fixture(autouse=True)
def _steady_clock():
    wait_for_fresh_window(60, margin=5)  # the default widget windows are one minute


@pytest.fixture
def widget(account, make_inbox):
    return make_inbox(account, "web_widget")


def start(inbox, address="192.0.2.1", **headers):
    return Client(REMOTE_ADDR=address).post(
        f"/widget/{inbox.id}/start/", {"name": "Visitor"}, **JSON, **headers
    )


def post(inbox, token, content="hello", address="192.0.2.1", **headers):
    return Client(REMOTE_ADDR=address).post(
        f"/widget/{inbox.id}/messages/",
        {"content": content},
        **JSON,
        HTTP_X_WIDGET_TOKEN=token,
        **headers,
    )


def assert_rate_limited(response):
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert "Try again in" in error["message"]
    assert 0 < int(response["Retry-After"]) <= 60
    assert error["retry_after"] == int(response["Retry-After"])


def test_starts_are_limited_per_address(widget):
    codes = [start(widget).status_code for _ in range(12)]
    assert codes == [201] * 10 + [429] * 2
    assert_rate_limited(start(widget))
    # Only the accepted starts created anything.
    assert Contact.objects.filter(inbox=widget).count() == 10
    assert Conversation.objects.filter(inbox=widget).count() == 10
    # Another address still starts a chat.
    assert start(widget, address="192.0.2.2").status_code == 201


def test_rotating_x_forwarded_for_does_not_help(widget):
    codes = [start(widget, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(11)]
    assert codes == [201] * 10 + [429]


def test_ipv6_clients_are_counted_per_64_block(widget):
    codes = [start(widget, address=f"2001:db8:1:2::{i:x}").status_code for i in range(11)]
    assert codes == [201] * 10 + [429]
    assert start(widget, address="2001:db8:1:3::1").status_code == 201


@override_settings(TICKMARK_WIDGET_START_INBOX_RATE="15/min")
def test_starts_are_limited_per_inbox(widget, account, make_inbox):
    codes = [start(widget, address=f"192.0.2.{i}").status_code for i in range(20)]
    assert codes == [201] * 15 + [429] * 5
    # An address refused by its own limit does not spend the inbox's budget: 10 of 15 used.
    second = make_inbox(account, "web_widget")
    one_address = [start(second, address="198.51.100.77").status_code for _ in range(14)]
    assert one_address == [201] * 10 + [429] * 4
    assert [start(second, address=f"10.0.0.{i}").status_code for i in range(6)] == [201] * 5 + [429]
    # And other inboxes are unaffected.
    assert start(make_inbox(account, "web_widget"), address="10.1.0.1").status_code == 201


def test_messages_are_limited_per_contact(widget):
    token = start(widget).json()["token"]
    codes = [post(widget, token, f"m{i}").status_code for i in range(32)]
    assert codes == [201] * 30 + [429] * 2
    assert_rate_limited(post(widget, token, "one more"))
    assert Message.objects.filter(inbox=widget).count() == 30
    # The same contact from another address is still the same contact.
    assert post(widget, token, address="192.0.2.200").status_code == 429
    # Another contact on the same address writes on.
    other = start(widget).json()["token"]
    assert post(widget, other, "hi").status_code == 201


@override_settings(TICKMARK_WIDGET_MESSAGE_ADDRESS_RATE="40/min")
def test_messages_are_limited_per_address(widget):
    tokens = [start(widget, address=f"192.0.2.{i}").json()["token"] for i in range(3)]
    codes = [
        post(widget, tokens[i % 3], f"m{i}", address="203.0.113.9").status_code for i in range(45)
    ]
    assert codes == [201] * 40 + [429] * 5
    assert post(widget, tokens[0], address="203.0.113.10").status_code == 201


def test_unknown_token_is_still_403_not_counted_for_the_contact(widget):
    token = start(widget).json()["token"]
    for _ in range(40):
        assert post(widget, "forged").status_code == 403
    assert post(widget, token).status_code == 201


def test_reading_the_conversation_is_not_limited(widget):
    token = start(widget).json()["token"]
    client = Client(REMOTE_ADDR="192.0.2.1")
    for _ in range(40):
        response = client.get(f"/widget/{widget.id}/messages/", HTTP_X_WIDGET_TOKEN=token)
        assert response.status_code == 200
