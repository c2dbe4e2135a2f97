"""The change feed and every other keyset-paginated list are exact for any number of ties and
any page size: every row exactly once per pass, following the links only (docs/change-feed.md).

DRF's CursorPagination lost 63 of 1,100 messages updated by one webhook at ``page_size=37``:
its cursor held ``updated_at`` and an offset capped at 1,000.
"""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient

from inbox import selectors
from inbox import services as inbox_services
from inbox.api.pagination import MessageFeedPagination
from inbox.models import Contact, Conversation, Inbox, Message
from statuses.machine import Status
from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription
from tests.api.conftest import make_key

APP_SECRET = "test_app_secret"
TIES = 1_100
PAGE_SIZES = (1, 37, 100, 200)


def follow(client, url, link="next"):
    """Every id a client sees following ``link`` from ``url``; the last page's body."""
    seen = []
    requests = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        requests += 1
        assert requests <= TIES + 5, "the links do not end"
        seen += [row["id"] for row in page["results"]]
        url = page[link]
    return seen, page


def follow_paginator(account, url):
    """``follow`` without HTTP: the same selector, paginator, SQL and cursor links, without the
    ~25 ms of Django/DRF request overhead per page (1,100 pages at ``page_size=1``)."""
    seen = []
    while url:
        request = Request(RequestFactory().get(url))
        paginator = MessageFeedPagination()
        queryset = selectors.message_list(account=account, filters=request.query_params)
        seen += [str(row.id) for row in paginator.paginate_queryset(queryset, request)]
        url = paginator.get_next_link()
        assert len(seen) <= TIES + 5, "the links do not end"
    return seen


def exactly_once(seen, expected):
    assert len(seen) == len(set(seen)), f"{len(seen) - len(set(seen))} rows repeated"
    missing = set(expected) - set(seen)
    assert not missing, f"{len(missing)} of {len(expected)} rows never listed"
    assert set(seen) == set(expected)


def whatsapp_statuses(wamids, status, ts):
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [
            {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "16505076520"}
            for wamid in wamids
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, signature


def sent_messages(inbox, count, prefix="wamid.tie"):
    contact = inbox_services.contact_get_or_create(inbox=inbox, address="+16505076520")
    conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
    now = timezone.now()
    return Message.objects.bulk_create(
        Message(
            account_id=inbox.account_id,
            inbox=inbox,
            conversation=conversation,
            channel_type=inbox.channel_type,
            direction=Message.Direction.OUTGOING,
            to_address=contact.address,
            content=f"hello {i}",
            provider_message_id=f"{prefix}{i}",
            status=Status.SENT,
            sent_at=now,
            created_at=now,
        )
        for i in range(count)
    )


@pytest.mark.django_db(transaction=True)
def test_one_webhook_updating_1100_messages_is_listed_exactly_once_per_page_size(
    account, inbox, api_key
):
    """The issue's reproduction: 1,100 WhatsApp messages, one signed webhook with a
    ``delivered`` status for each (applied in one transaction), then the feed from
    ``updated_after`` = before the webhook, at page sizes 1, 37, 100 and 200."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    messages = sent_messages(inbox, TIES)
    ids = {str(m.id) for m in messages}
    before = timezone.now()
    raw, signature = whatsapp_statuses([m.provider_message_id for m in messages], "delivered", 1)
    response = client.post(
        inbox.webhook_path, raw, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )
    assert response.status_code == 200, response.content
    assert Message.objects.filter(inbox=inbox, status=Status.DELIVERED).count() == TIES
    # One transaction: the whole group shares one updated_at (the tie DRF could not page).
    assert Message.objects.filter(inbox=inbox).values("updated_at").distinct().count() == 1

    since = before.isoformat().replace("+00:00", "Z")
    for page_size in PAGE_SIZES:
        url = f"/api/v1/messages?inbox={inbox.id}&updated_after={since}&page_size={page_size}"
        if page_size == 1:
            exactly_once(follow_paginator(account, url), ids)
            continue
        seen, last = follow(client, url)
        exactly_once(seen, ids)
        # Nothing changed since: following ``poll`` gives nothing more.
        assert client.get(last["poll"]).json()["results"] == []
    # The per-channel list and a status filter page the same way (the load test's READ list).
    seen, _ = follow(client, f"/api/v1/whatsapp/messages?page_size=37&updated_after={since}")
    exactly_once(seen, ids)
    seen, _ = follow(client, "/api/v1/messages?status=DELIVERED&channel=WHATSAPP&page_size=37")
    exactly_once(seen, ids)
    # Backwards, following ``previous`` from the last page, every row once as well.
    _, last = follow(client, "/api/v1/messages?page_size=200")
    first_url = last["previous"]
    backwards, _ = follow(client, first_url, link="previous")
    exactly_once(backwards + [r["id"] for r in last["results"]], ids)


def test_poll_after_the_tie_group_returns_only_later_changes(client, inbox):
    from statuses import services

    messages = sent_messages(inbox, 1_050)
    seen, last = follow(client, "/api/v1/messages?page_size=200")
    exactly_once(seen, {str(m.id) for m in messages})
    changed = messages[517]
    services.message_status_report(message=changed, status=Status.READ, source="webhook")
    page = client.get(last["poll"]).json()
    assert [m["id"] for m in page["results"]] == [str(changed.id)]
    assert page["results"][0]["status"] == "READ"
    assert page["next"] is None and client.get(page["poll"]).json()["results"] == []


# --- the other keyset lists: ties on their first ordering field --------------------------------


def _conversations(account, inbox, count):
    at = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(account=account, inbox=inbox, address=f"+1555{i:07d}") for i in range(count)
    )
    return Conversation.objects.bulk_create(
        Conversation(account=account, inbox=inbox, contact=c, last_message_at=at, created_at=at)
        for c in contacts
    )


def _deliveries(account, count):
    subscription = WebhookSubscription.objects.create(account=account, url="https://e.com/h")
    event = OutgoingEvent.objects.create(subscription=subscription, event_type="x", payload={})
    at = timezone.now()
    attempts = OutgoingAttempt.objects.bulk_create(
        OutgoingAttempt(event=event, attempted_at=at) for _ in range(count)
    )
    return f"/api/v1/webhooks/{subscription.id}/deliveries", [a.id for a in attempts]


@pytest.mark.parametrize("page_size", [37, 200])
@pytest.mark.parametrize("listing", ["conversations", "conversation", "deliveries", "webhooks"])
def test_lists_with_1050_ties_are_exact(client, account, inbox, listing, page_size):
    count = 1_050
    at = timezone.now()
    if listing == "conversations":
        url, expected = (
            "/api/v1/conversations",
            [c.id for c in _conversations(account, inbox, count)],
        )
    elif listing == "conversation":
        messages = sent_messages(inbox, count)
        Message.objects.filter(inbox=inbox).update(created_at=at)
        url, expected = f"/api/v1/conversations/{messages[0].conversation_id}/messages", messages
        expected = [str(m.id) for m in expected]
    elif listing == "deliveries":
        url, expected = _deliveries(account, count)
    else:
        expected = [
            s.id
            for s in WebhookSubscription.objects.bulk_create(
                WebhookSubscription(account=account, url=f"https://e.com/{i}", created_at=at)
                for i in range(count)
            )
        ]
        url = "/api/v1/webhooks"
    seen, _ = follow(client, f"{url}?page_size={page_size}")
    exactly_once(seen, expected)


def test_inboxes_with_ties_are_exact(client, account):
    at = timezone.now()
    inboxes = Inbox.objects.bulk_create(
        Inbox(account=account, name=f"i{i}", channel_type="web_widget", created_at=at)
        for i in range(260)
    )
    seen, _ = follow(client, "/api/v1/inboxes?page_size=37")
    exactly_once(seen, [str(i.id) for i in inboxes])


def test_conversations_newest_first_with_ties_broken_by_id(client, account, inbox):
    conversations = _conversations(account, inbox, 5)
    newest = conversations[2]
    Conversation.objects.filter(id=newest.id).update(
        last_message_at=newest.last_message_at + timedelta(seconds=1)
    )
    seen, _ = follow(client, "/api/v1/conversations?page_size=2")
    rest = sorted((c.id for c in conversations if c.id != newest.id), reverse=True)
    assert seen == [newest.id, *rest]


# --- cursors are opaque and checked ------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        "eyJwIjpbMV19",  # {"p":[1]}: wrong length
        "e30",  # {}
        "eyJwIjpbImEiLCJiIl19",  # {"p":["a","b"]}
        "eyJwIjpbMSwxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMF19",  # beyond bigint
        "bnVsbA",  # null
    ],
)
def test_a_forged_cursor_is_a_json_400(client, inbox, cursor):
    for url in ("/api/v1/messages", "/api/v1/conversations", "/api/v1/webhooks"):
        response = client.get(f"{url}?cursor={cursor}")
        assert response.status_code == 400, (url, response.content)
        assert response.json()["error"]["field"] == "cursor"


def test_links_keep_the_filters(client, inbox, sms_inbox):
    sent_messages(inbox, 3)
    sent_messages(sms_inbox, 3, prefix="SM")
    page = client.get("/api/v1/messages?channel=SMS&page_size=2").json()
    assert "channel=SMS" in page["next"] and "channel=SMS" in page["poll"]
    seen, _ = follow(client, page["next"])
    listed = {m["id"] for m in page["results"]} | set(seen)
    assert listed == {str(m.id) for m in Message.objects.filter(inbox=sms_inbox)}


def test_another_accounts_cursor_shows_nothing_of_theirs(client, other_account, inbox, make_inbox):
    mine = {str(m.id) for m in sent_messages(inbox, 3)}
    theirs = {str(m.id) for m in sent_messages(make_inbox(other_account), 3, prefix="wamid.o")}
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(other_account)}")
    page = client.get("/api/v1/messages?page_size=1").json()
    seen, _ = follow(other, page["next"])
    assert set(seen) == theirs and not set(seen) & mine


# --- every write path moves the message in the feed (the database stamps it) ------------------


def test_every_kind_of_write_moves_the_message_to_the_end_of_the_feed(client, inbox):
    from django.db import connection

    from statuses import outbound, services

    messages = sent_messages(inbox, 6)
    start = client.get("/api/v1/messages?page_size=200").json()
    assert len(start["results"]) == 6

    def moved():
        page = client.get(start["poll"]).json()
        return [row["id"] for row in page["results"]]

    services.message_status_report(message=messages[0], status=Status.FAILED, source="webhook")
    assert moved() == [str(messages[0].id)]
    outbound.message_resend(message=Message.objects.get(id=messages[0].id))
    assert moved() == [str(messages[0].id)]
    message = Message.objects.get(id=messages[1].id)
    message.content = "edited in the admin"
    message.save()  # writes the stale change_seq it loaded: the trigger overrides it
    assert moved() == [str(messages[0].id), str(messages[1].id)]
    Message.objects.filter(id=messages[2].id).update(provider_message_id="wamid.adopted")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET content = 'raw' WHERE id = %s",
            [messages[3].id.hex if connection.vendor == "sqlite" else messages[3].id],
        )
    assert moved() == [str(m.id) for m in messages[:4]]
    # An update that changes nothing does not move it (PostgreSQL compares the rows).
    if connection.vendor == "postgresql":
        Message.objects.filter(id=messages[4].id).update(content="hello 4")
        assert moved() == [str(m.id) for m in messages[:4]]


def test_the_openapi_description_states_the_feed_contract():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in ("/api/v1/messages", "/api/v1/{family}/messages"):
        operation = schema["paths"][path]["get"]
        assert "exactly once per pass" in operation["description"]
        assert "delayed, never skipped" in operation["description"]
        assert "at-least-once per message" in operation["description"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert "starting point" in parameters["updated_after"]["description"]
        assert "cursor" in parameters
    conversations = schema["paths"]["/api/v1/conversations"]["get"]
    assert "moves to the front" in conversations["description"]
