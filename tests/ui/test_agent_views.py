"""Agent views and widget endpoints over HTTP: login, account scoping, JSON shapes, token scoping."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Membership, Message
from statuses import outbound, services
from statuses.providers.base import InboundMessage, SendOutcome, SendResult

pytestmark = pytest.mark.django_db


def _client_for(account, username="ada"):
    user = get_user_model().objects.create_user(username=username, password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client


def _inbound(inbox, address="+16505076520", text="Hi!"):
    inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[InboundMessage(address, f"in-{address}-{text}", text, timezone.now(), "Grace")],
    )
    return inbox.conversations.get(contact__address=address)


@pytest.fixture
def conversation(inbox):
    return _inbound(inbox)


def _failed(conversation, code, title="Undeliverable"):
    message, _ = outbound.message_create_outgoing(
        account=conversation.account,
        inbox=conversation.inbox,
        to=conversation.contact.address,
        content="Hello",
        conversation=conversation,
    )
    services.message_record_send_result(
        message_id=message.id,
        attempt=1,
        result=SendResult(SendOutcome.REJECTED, error_code=code, error_title=title),
    )
    message.refresh_from_db()
    return message


@pytest.fixture
def failed_message(conversation):
    return _failed(conversation, "131026")


def test_pages_require_login(client, conversation):
    for url in ("/", f"/conversations/{conversation.id}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")
    response = client.get(
        f"/conversations/{conversation.id}/messages.json", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 401


def test_login_page_signs_in(client, account):
    get_user_model().objects.create_user(username="ada", password="pw-123456")
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "ada", "password": "pw-123456"})
    assert response.status_code == 302


def test_another_accounts_objects_are_404(other_account, conversation, failed_message):
    client = _client_for(other_account, "bob")
    json = {"HTTP_ACCEPT": "application/json"}
    assert client.get(f"/conversations/{conversation.id}/").status_code == 404
    assert client.get(f"/conversations/{conversation.id}/messages.json", **json).status_code == 404
    assert client.get(f"/messages/{failed_message.id}/events.json", **json).status_code == 404
    assert client.post(f"/messages/{failed_message.id}/resend/", **json).status_code == 404
    response = client.post(f"/conversations/{conversation.id}/send/", {"content": "x"}, **json)
    assert response.status_code == 404
    assert conversation.contact.name not in client.get("/").content.decode()
    assert Message.objects.filter(content="x").count() == 0


def test_conversation_view_shows_ticks_failure_and_marks_read(
    account, conversation, failed_message
):
    client = _client_for(account)
    assert conversation.unread_count == 1
    html = client.get(f"/conversations/{conversation.id}/").content.decode()
    assert 'role="img" aria-label="Failed ' in html
    assert "The number is not on WhatsApp" in html  # catalogue explanation
    # 131026 is permanent in the catalogue: no Resend, the hint says what to do instead.
    assert "Resend</button>" not in html
    assert "Resending will not help with this error." in html
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_messages_json_and_events_json(account, conversation, failed_message):
    client = _client_for(account)
    data = client.get(f"/conversations/{conversation.id}/messages.json").json()
    outgoing = [m for m in data["messages"] if m["direction"] == "outgoing"]
    assert outgoing[0]["tick"] == "failed"
    assert outgoing[0]["error"]["hint"]
    assert data["compose"] == {"window_closed": False, "templates": True, "max_length": 4096}
    events = client.get(f"/messages/{failed_message.id}/events.json").json()["events"]
    assert [(e["raw_status"], e["source"], e["error"]["code"]) for e in events] == [
        ("send:rejected", "Send response", "131026")
    ]


def test_resend_starts_a_new_attempt(account, conversation):
    failed_message = _failed(conversation, "131000")  # "Something went wrong": may succeed later
    client = _client_for(account)
    html = client.get(f"/conversations/{conversation.id}/").content.decode()
    assert "Resend</button>" in html
    response = client.post(f"/messages/{failed_message.id}/resend/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["message"]["status"] == "queued"
    failed_message.refresh_from_db()
    assert failed_message.attempt == 2
    response = client.post(f"/messages/{failed_message.id}/resend/", HTTP_ACCEPT="application/json")
    assert response.status_code == 409


def test_resend_of_a_permanent_failure_is_refused_with_what_to_do(account, failed_message):
    client = _client_for(account)
    response = client.post(f"/messages/{failed_message.id}/resend/", HTTP_ACCEPT="application/json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "resend_will_not_help"
    assert "Check the number with the contact" in error["message"]
    failed_message.refresh_from_db()
    assert (failed_message.status, failed_message.attempt) == ("failed", 1)


def test_error_code_is_not_repeated_in_the_title(account, conversation):
    message = _failed(conversation, "131009", "(#131009) Parameter value is not valid")
    client = _client_for(account)
    data = client.get(f"/conversations/{conversation.id}/messages.json").json()
    error = next(m for m in data["messages"] if m["id"] == str(message.id))["error"]
    assert (error["code"], error["title"]) == ("131009", "Parameter value is not valid")
    html = client.get(f"/conversations/{conversation.id}/").content.decode()
    assert html.count("131009") == 1


def test_history_is_in_lifecycle_order_in_plain_words_with_both_times(account, conversation):
    from statuses.models import StatusEvent

    message = _failed(conversation, "131000")
    client = _client_for(account)
    client.post(f"/messages/{message.id}/resend/", HTTP_ACCEPT="application/json")
    message.refresh_from_db()
    services.message_record_send_result(
        message_id=message.id,
        attempt=2,
        result=SendResult(SendOutcome.ACCEPTED, provider_message_id="wamid.H1"),
    )
    second = timezone.now().replace(microsecond=0)
    # Three webhooks of the same second, stored in the order read → delivered (twice) → sent.
    StatusEvent.objects.bulk_create(
        [
            StatusEvent(
                inbox=conversation.inbox,
                message=message,
                attempt=2,
                provider_message_id="wamid.H1",
                status=status,
                raw_status=status,
                source=StatusEvent.Source.WEBHOOK,
                outcome=outcome,
                occurred_at=second,
                duplicate_count=dups,
                dedupe_key=f"t:{status}",
            )
            for status, outcome, dups in (
                ("read", "applied", 0),
                ("delivered", "recorded", 1),
                ("sent", "recorded", 0),
            )
        ]
    )
    events = client.get(f"/messages/{message.id}/events.json").json()["events"]
    assert [(e["attempt"], e["what"]) for e in events] == [
        (1, "Refused by WhatsApp"),
        (2, "Accepted by WhatsApp"),
        (2, "Sent by WhatsApp"),
        (2, "Delivered to the phone"),
        (2, "Read by the contact"),
    ]
    assert "Duplicate report (once) — ignored" in events[3]["effect"]
    assert all(e["occurred_at"] and e["received_at"] for e in events)


def test_send_text_and_closed_window(account, inbox, make_message):
    client = _client_for(account)
    stale = make_message(inbox, to="+15550001111")
    conversation = stale.conversation
    html = client.get(f"/conversations/{conversation.id}/").content.decode()
    assert "The 24-hour window is closed." in html
    json = {"HTTP_ACCEPT": "application/json"}
    url = f"/conversations/{conversation.id}/send/"
    response = client.post(url, {"content": "Hello"}, **json)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "outside_customer_service_window"
    response = client.post(
        url, {"template_name": "order_update", "template_language": "en_US"}, **json
    )
    assert response.status_code == 201
    assert response.json()["message"]["template"] == {"name": "order_update", "language": "en_US"}
    _inbound(inbox, address="+15550001111")
    response = client.post(url, {"content": "Now free text works"}, **json)
    assert response.status_code == 201
    assert response.json()["message"]["tick"] == "pending"


def test_widget_endpoints_are_token_scoped(account, make_inbox):
    widget_inbox = make_inbox(account, "web_widget")
    client = Client()
    assert client.get(f"/widget/{widget_inbox.id}/").status_code == 200
    alice = client.post(
        f"/widget/{widget_inbox.id}/start/", {"name": "Alice"}, content_type="application/json"
    ).json()["token"]
    bob = client.post(f"/widget/{widget_inbox.id}/start/", {}, content_type="application/json")
    bob = bob.json()["token"]
    url = f"/widget/{widget_inbox.id}/messages/"
    response = client.post(
        url, {"content": "Alice here"}, content_type="application/json", HTTP_X_WIDGET_TOKEN=alice
    )
    assert response.status_code == 201
    assert [
        m["content"] for m in client.get(url, HTTP_X_WIDGET_TOKEN=alice).json()["messages"]
    ] == ["Alice here"]
    assert client.get(url, HTTP_X_WIDGET_TOKEN=bob).json()["messages"] == []
    assert client.get(url).status_code == 403
    assert client.get(url, HTTP_X_WIDGET_TOKEN="forged").status_code == 403
    # Not a widget inbox: no widget.
    whatsapp = make_inbox(account)
    assert client.get(f"/widget/{whatsapp.id}/").status_code == 404
    incoming = Message.objects.get(content="Alice here")
    assert incoming.direction == "incoming"
    assert incoming.conversation.contact.name == "Alice"


def test_too_long_text_gets_one_clear_message(account, conversation):
    client = _client_for(account)
    response = client.post(
        f"/conversations/{conversation.id}/send/",
        {"content": "A" * 10_000},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Too long: 10,000 characters; this channel allows 4,096. "
        "Shorten it or split it into several messages."
    )
    assert not Message.objects.filter(direction="outgoing").exists()


def test_sms_limit_is_the_channels(account, make_inbox):
    sms = make_inbox(account, "twilio_sms")
    conversation = _inbound(sms, address="+14155550100")
    client = _client_for(account)
    url = f"/conversations/{conversation.id}/send/"
    json = {"HTTP_ACCEPT": "application/json"}
    assert client.post(url, {"content": "A" * 1601}, **json).status_code == 400
    assert client.post(url, {"content": "A" * 1600}, **json).status_code == 201


def test_start_conversation_checks_address_and_scopes_the_inbox(
    account, other_account, inbox, make_inbox
):
    client = _client_for(account)
    json = {"HTTP_ACCEPT": "application/json"}
    template = {"template_name": "hello_world", "template_language": "en_US"}
    response = client.post(
        "/conversations/start/", {"inbox": inbox.id, "to": "12", **template}, **json
    )
    assert response.status_code == 400
    assert "international format" in response.json()["error"]["message"]
    # Free text to a contact who never wrote: WhatsApp's 24-hour window is closed.
    response = client.post(
        "/conversations/start/", {"inbox": inbox.id, "to": "+14155550123", "content": "Hi"}, **json
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "outside_customer_service_window"
    # Another account's inbox is not a choice.
    foreign = make_inbox(other_account)
    response = client.post(
        "/conversations/start/", {"inbox": foreign.id, "to": "+14155550123", **template}, **json
    )
    assert response.status_code == 400
    assert not Message.objects.exists()

    response = client.post(
        "/conversations/start/", {"inbox": inbox.id, "to": "+14155550123", **template}, **json
    )
    assert response.status_code == 201
    body = response.json()
    assert body["url"] == f"/conversations/{body['conversation_id']}/"
    message = Message.objects.get()
    assert (message.to_address, message.conversation.account) == ("+14155550123", account)


def test_list_filters(account, inbox, make_inbox, failed_message):
    import re

    client = _client_for(account)
    sms = make_inbox(account, "twilio_sms")
    invoice = _inbound(sms, address="+14155550100", text="invoice 42").id
    grace = failed_message.conversation_id  # WhatsApp, "Grace", a failed message, unread

    def ids(query):
        html = client.get(f"/conversations/list/?{query}").content.decode()
        return sorted(int(i) for i in re.findall(r'data-conversation-id="(\d+)"', html))

    both = sorted([invoice, grace])
    assert ids("") == both
    assert ids("q=invoice") == [invoice]
    assert ids("q=GRACE") == both  # both contacts are called Grace
    assert ids("q=5550100") == [invoice]
    assert ids("failed=1") == [grace]
    assert ids("channel=sms") == [invoice]
    assert ids("channel=whatsapp") == [grace]
    assert ids("channel=bogus") == both  # unknown channel: no filter
    assert ids("unread=1") == both
    client.get(f"/conversations/{grace}/")  # opening it marks it read
    assert ids("unread=1") == [invoice]
    assert "No conversation matches." in client.get("/conversations/list/?q=zzz").content.decode()


def test_widget_demo_page_and_favicon(account, make_inbox):
    client = _client_for(account)
    html = client.get("/widget-demo/").content.decode()
    assert "no web widget inbox yet" in html
    widget_inbox = make_inbox(account, "web_widget")
    html = client.get("/widget-demo/").content.decode()
    assert f'data-inbox="{widget_inbox.id}"' in html and "widget/embed.js" in html
    assert "<script>" not in html  # no inline script (CSP)
    response = client.get("/favicon.ico")
    assert response.status_code in (301, 302) and response["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in client.get("/").content.decode()


def test_contact_panel(account, conversation, make_inbox):
    # The same address in a second inbox of the account: two conversations with this contact.
    sms = make_inbox(account, "twilio_sms")
    _inbound(sms, address=conversation.contact.address)
    client = _client_for(account)
    html = client.get(f"/conversations/{conversation.id}/").content.decode()
    panel = html.split('class="contact-panel"')[1].split("</dl>")[0]
    assert "<dd>Grace</dd>" in panel
    assert f"<dd>{conversation.contact.address}</dd>" in panel
    assert "WhatsApp Cloud API" in panel
    assert 'data-clock="full"' in panel  # last seen, painted in the agent's local time
    assert "<dt>Conversations</dt><dd>2</dd>" in panel
