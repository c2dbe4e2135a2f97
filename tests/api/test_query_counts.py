import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription


def count_queries(client, url):
    client.get(url)  # warm up: last_used_at write, session, …
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/messages?page_size={n}",
        "/api/v1/messages?page_size={n}&is_terminal=false&channel=WHATSAPP",
        "/api/v1/whatsapp/messages?page_size={n}",
        "/api/v1/conversations?page_size={n}",
        "/api/v1/inboxes?page_size={n}",
        "/api/v1/webhooks?page_size={n}",
        "/api/v1/webhooks/{sub}/deliveries?page_size={n}",
        "/api/v1/conversations/{conv}/messages?page_size={n}",
        "/api/v1/messages/{msg}/events",
    ],
)
def test_list_queries_do_not_grow_with_page_size(
    client, account, inbox, make_inbox, make_message, url
):
    from statuses import services

    messages = []
    for i in range(30):
        make_inbox(account, "web_widget")
        message = make_message(inbox, to=f"+1650500{i:04d}")
        services.message_status_report(message=message, status="sent", source="webhook")
        messages.append(message)
    same_conversation = [make_message(inbox, to="+16505000000") for _ in range(10)]
    subscription = None
    for i in range(30):
        subscription = WebhookSubscription.objects.create(account=account, url=f"https://e.com/{i}")
    event = OutgoingEvent.objects.create(subscription=subscription, event_type="x", payload={})
    OutgoingAttempt.objects.bulk_create(OutgoingAttempt(event=event) for _ in range(30))

    fmt = dict(sub=subscription.id, conv=same_conversation[0].conversation_id, msg=messages[0].id)
    small, small_body = count_queries(client, url.format(n=2, **fmt))
    large, large_body = count_queries(client, url.format(n=25, **fmt))
    assert small == large
    assert small <= 3  # key lookup, (parent object), one page query
    if isinstance(large_body, dict):
        assert len(large_body["results"]) > len(small_body["results"])


def _post(client, inbox, to, customer_message_id):
    body = {"inbox": str(inbox.id), "to": to, "content": "Your order has shipped."}
    if customer_message_id:
        body["customer_message_id"] = customer_message_id
    return client.post("/api/v1/messages", body, format="json")


def create_statements(client, inbox, to, customer_message_id="order-2"):
    _post(client, inbox, "+16505550000", "warm-up")  # warm up: key and inbox cached
    with CaptureQueriesContext(connection) as ctx:
        response = _post(client, inbox, to, customer_message_id)
    # In a test the create's transaction is a savepoint: its two markers are counted too.
    statements = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]
    return statements, response


# A brand-new message (new contact, new conversation): one statement holds the repeat check,
# the contact and conversation upserts, the message, the task row (its fairness count inside)
# and whether an integrator is subscribed — 18 statements before issue #12's rewrite, 4 until
# its seventh round. BEGIN and COMMIT come on top.
CREATE_STATEMENTS = 1


@pytest.mark.requires_postgres(
    "counts the PostgreSQL statements of the create path (SQLite takes the ORM fallback)"
)
def test_message_create_costs_a_constant_number_of_statements(client, sms_inbox):
    statements, response = create_statements(client, sms_inbox, "+16505550001")
    assert response.status_code == 202, response.content
    assert len(statements) == CREATE_STATEMENTS, statements
    # The same for a contact and conversation that exist already.
    statements, response = create_statements(client, sms_inbox, "+16505550001", "order-3")
    assert response.status_code == 202, response.content
    assert len(statements) == CREATE_STATEMENTS, statements
    # And without a customer_message_id.
    statements, response = create_statements(client, sms_inbox, "+16505550001", None)
    assert response.status_code == 202, response.content
    assert len(statements) == CREATE_STATEMENTS, statements


def test_repeated_create_costs_two_statements(client, sms_inbox):
    first = _post(client, sms_inbox, "+16505550001", "order-1")
    statements, response = create_statements(client, sms_inbox, "+16505550001", "order-1")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == first.json()["id"]
    assert len(statements) == 2, statements  # the repeat check, the existing message


@pytest.mark.requires_postgres(
    "counts the PostgreSQL statements of the create path (SQLite takes the ORM fallback)"
)
def test_create_with_a_webhook_subscription_adds_the_event_and_its_delivery_task(
    client, account, sms_inbox
):
    WebhookSubscription.objects.create(
        account=account, url="https://e.com/hook", events=["message.created"]
    )
    statements, response = create_statements(client, sms_inbox, "+16505550001")
    assert response.status_code == 202, response.content
    # The subscriptions, read and pinned; the event; its delivery task.
    assert len(statements) == CREATE_STATEMENTS + 3, statements
    assert OutgoingEvent.objects.filter(message_id=response.json()["id"]).count() == 1


@pytest.mark.requires_postgres(
    "counts the PostgreSQL statements of the create path (SQLite takes the ORM fallback)"
)
def test_create_reads_no_subscription_that_cannot_want_the_event(client, account, sms_inbox):
    WebhookSubscription.objects.create(
        account=account, url="https://e.com/status", events=["message.status_changed"]
    )
    WebhookSubscription.objects.create(
        account=account, url="https://e.com/off", events=["message.created"], is_active=False
    )
    statements, response = create_statements(client, sms_inbox, "+16505550001")
    assert response.status_code == 202, response.content
    assert len(statements) == CREATE_STATEMENTS, statements
    assert not OutgoingEvent.objects.filter(message_id=response.json()["id"]).exists()


def test_message_lookup_is_one_query_with_the_key_cached(client, make_message, inbox):
    message = make_message(inbox)
    queries, body = count_queries(client, f"/api/v1/messages/{message.id}")
    assert queries == 1
    assert body["id"] == str(message.id)
