from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from inbox.models import Contact, Conversation, Message
from statuses import services
from statuses.models import StatusEvent

MESSAGE_FIELDS = {
    "id",
    "customer_message_id",
    "provider_message_id",
    "inbox",
    "channel",
    "channel_type",
    "conversation",
    "direction",
    "to",
    "content",
    "status",
    "tick",
    "is_terminal",
    "error",
    "attempt",
    "queued_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "status_updated_at",
    "created_at",
    "read_by_agent_at",
}


def send(client, inbox, **body):
    payload = {"inbox": str(inbox.id), "to": "+16505076520", "content": "Hi", **body}
    return client.post("/api/v1/messages", payload, format="json")


def report(message, status, **kw):
    services.message_status_report(message=message, status=status, source="webhook", **kw)
    message.refresh_from_db()
    return message


# --- create -----------------------------------------------------------------------------------


def test_create_is_202_queued(client, inbox, open_window):
    open_window(inbox)
    response = send(client, inbox, customer_message_id="order-1")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == MESSAGE_FIELDS
    assert body["status"] == "QUEUED" and body["tick"] == "pending"
    assert body["channel"] == "WHATSAPP" and body["direction"] == "outgoing"
    assert response["Retry-After"]
    assert Message.objects.get(id=body["id"]).customer_message_id == "order-1"


def test_repeated_customer_message_id_returns_the_existing_message_with_200(
    client, inbox, open_window
):
    open_window(inbox)
    first = send(client, inbox, customer_message_id="order-1").json()
    again = send(client, inbox, customer_message_id="order-1", content="other")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert Message.objects.count() == 1


def test_window_refusal_is_422(client, inbox):
    contacts, conversations = Contact.objects.count(), Conversation.objects.count()
    response = send(client, inbox)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "outside_customer_service_window"
    # The refusal is found after the one statement that stores the message: its transaction
    # takes back the message, its send task, and the contact and conversation it made.
    assert Message.objects.count() == 0
    assert not DBTaskResult.objects.exists()
    assert (Contact.objects.count(), Conversation.objects.count()) == (contacts, conversations)


def test_template_is_allowed_outside_the_window(client, inbox):
    response = send(
        client, inbox, content=None, template={"name": "hello", "language": {"code": "en"}}
    )
    assert response.status_code == 400  # content null is invalid
    response = client.post(
        "/api/v1/messages",
        {"inbox": str(inbox.id), "to": "+16505076520", "template": {"name": "hello"}},
        format="json",
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": None}, "content"),
        ({"template": {"name": "x"}}, "content"),  # both content and template
        ({"to": "12345"}, "to"),
        ({"inbox": "00000000-0000-0000-0000-000000000000"}, "inbox"),
    ],
)
def test_create_validation(client, inbox, body, field):
    payload = {"inbox": str(inbox.id), "to": "+16505076520", "content": "Hi", **body}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = client.post("/api/v1/messages", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_cannot_send_through_another_accounts_inbox(other_client, inbox):
    response = send(other_client, inbox)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "inbox"


# --- read -------------------------------------------------------------------------------------


def test_retrieve_has_exactly_the_contract_fields(client, inbox, make_message):
    message = make_message(inbox, customer_message_id="c-1")
    response = client.get(f"/api/v1/messages/{message.id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == MESSAGE_FIELDS
    assert body["status"] == "QUEUED" and body["is_terminal"] is False
    assert body["error"] is None
    assert int(response["Retry-After"]) > 0


def test_terminal_message_has_no_retry_after_and_explains_its_error(client, inbox, make_message):
    message = make_message(inbox)
    report(message, "failed", error_code="131047", error_title="Re-engagement message")
    response = client.get(f"/api/v1/messages/{message.id}")
    body = response.json()
    assert body["status"] == "FAILED" and body["tick"] == "failed" and body["is_terminal"]
    assert body["error"]["code"] == "131047"
    assert body["error"]["hint"]
    assert "Retry-After" not in response


def test_events_oldest_first(client, inbox, make_message):
    message = make_message(inbox)
    now = timezone.now()
    report(message, "delivered", occurred_at=now)
    report(message, "sent", occurred_at=now - timedelta(seconds=5))
    report(message, "sent", occurred_at=now - timedelta(seconds=5))  # duplicate
    events = client.get(f"/api/v1/messages/{message.id}/events").json()
    assert [e["status"] for e in events] == ["SENT", "DELIVERED"]
    assert events[0]["duplicate_count"] == 1
    assert set(events[0]) >= {
        "status",
        "raw_status",
        "occurred_at",
        "received_at",
        "source",
        "outcome",
        "attempt",
        "error",
        "duplicate_count",
    }


def test_status_lookup_by_customer_message_id(client, inbox, make_message):
    message = make_message(inbox, customer_message_id="ext-7")
    response = client.get("/api/v1/messages/status/ext-7?channel=WHATSAPP")
    assert response.status_code == 200
    assert response.json()["id"] == str(message.id)
    assert response.json()["message_status"]["message_status"] == "QUEUED"
    assert client.get("/api/v1/messages/status/ext-7?channel=SMS").status_code == 404
    assert client.get("/api/v1/messages/status/nope").status_code == 404
    bad = client.get("/api/v1/messages/status/ext-7?channel=PIGEON")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "channel"


def test_per_channel_views(client, inbox, sms_inbox, make_message):
    wa = make_message(inbox)
    sms = make_message(sms_inbox, to="+15551234567")
    listed = client.get("/api/v1/whatsapp/messages").json()["results"]
    assert [m["id"] for m in listed] == [str(wa.id)]
    assert listed[0]["message_status"]["message_status"] == "QUEUED"
    assert client.get(f"/api/v1/sms/messages/{sms.id}").json()["channel"] == "SMS"
    assert client.get(f"/api/v1/sms/messages/{wa.id}").status_code == 404
    assert client.get("/api/v1/pigeon/messages").status_code == 404


def test_list_filters(client, inbox, sms_inbox, make_message):
    queued = make_message(inbox)
    read = report(make_message(inbox, to="+16505070000"), "read")
    sms = report(make_message(sms_inbox, to="+15551234567"), "delivered")

    def ids(query):
        response = client.get(f"/api/v1/messages?{query}")
        assert response.status_code == 200, response.content
        return {m["id"] for m in response.json()["results"]}

    assert ids("") == {str(queued.id), str(read.id), str(sms.id)}
    assert ids("status=READ") == {str(read.id)}
    assert ids("status=READ,QUEUED") == {str(read.id), str(queued.id)}
    assert ids("channel=SMS") == {str(sms.id)}
    assert ids("is_terminal=true") == {str(read.id), str(sms.id)}  # delivered is final on SMS
    assert ids("is_terminal=false") == {str(queued.id)}
    assert ids(f"inbox={sms_inbox.id}") == {str(sms.id)}
    assert ids(f"conversation={queued.conversation_id}") == {str(queued.id)}
    assert ids("direction=incoming") == set()
    cut = Message.objects.get(id=read.id).updated_at
    assert ids(f"updated_after={cut.isoformat().replace('+00:00', 'Z')}") == {str(sms.id)}
    assert ids("created_before=2000-01-01T00:00:00Z") == set()
    bad = client.get("/api/v1/messages?status=SHIPPED")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"


def test_change_feed_cursor_pagination_never_misses_an_update(client, inbox, make_message):
    messages = [make_message(inbox, to=f"+1650507{i:04d}") for i in range(5)]
    page = client.get("/api/v1/messages?page_size=2").json()
    seen = [m["id"] for m in page["results"]]
    # The first message changes while the client pages: it comes again at the end.
    report(messages[0], "sent")
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [m["id"] for m in page["results"]]
    assert seen[:5] == [str(m.id) for m in messages]
    assert seen[5:] == [str(messages[0].id)]
    # Following "poll" returns only later changes.
    assert client.get(page["poll"]).json()["results"] == []
    report(messages[3], "sent")
    assert [m["id"] for m in client.get(page["poll"]).json()["results"]] == [str(messages[3].id)]


# --- resend and status reports ----------------------------------------------------------------


def test_resend(client, inbox, make_message):
    message = make_message(inbox)
    response = client.post(f"/api/v1/messages/{message.id}/resend")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_resendable"
    report(message, "failed", error_code="131000")  # "Something went wrong": retryable
    response = client.post(f"/api/v1/messages/{message.id}/resend")
    assert response.status_code == 202
    assert response.json()["status"] == "QUEUED" and response.json()["attempt"] == 2


def test_resend_of_a_permanent_failure_is_422(client, inbox, make_message):
    message = make_message(inbox)
    report(message, "failed", error_code="131026")  # not on WhatsApp: fails the same way again
    response = client.post(f"/api/v1/messages/{message.id}/resend")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "resend_will_not_help"
    assert "Check the number with the contact" in response.json()["error"]["message"]
    message.refresh_from_db()
    assert message.attempt == 1


def test_status_report_on_api_channel(client, api_inbox, make_message):
    message = make_message(api_inbox, to="customer-42")
    response = client.post(
        f"/api/v1/messages/{message.id}/status", {"status": "DELIVERED"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "DELIVERED"
    # A late FAILED never hides the delivery (same merge rule as webhooks).
    response = client.post(
        f"/api/v1/messages/{message.id}/status",
        {"status": "FAILED", "error": {"code": "bounced"}},
        format="json",
    )
    assert response.json()["status"] == "DELIVERED"
    response = client.post(
        f"/api/v1/messages/{message.id}/status", {"status": "READ"}, format="json"
    )
    assert response.json()["status"] == "READ" and "Retry-After" not in response
    sources = set(StatusEvent.objects.filter(message=message).values_list("source", flat=True))
    assert sources == {"api"}


def test_status_report_validation_and_wrong_channel(client, inbox, api_inbox, make_message):
    api_message = make_message(api_inbox, to="customer-42")
    bad = client.post(
        f"/api/v1/messages/{api_message.id}/status", {"status": "SENT"}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    wa_message = make_message(inbox)
    wrong = client.post(
        f"/api/v1/messages/{wa_message.id}/status", {"status": "DELIVERED"}, format="json"
    )
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "wrong_channel"


# --- every message route: 401 and cross-account 404 -------------------------------------------

ROUTES = [
    ("get", "/api/v1/messages/{id}"),
    ("get", "/api/v1/messages/{id}/events"),
    ("post", "/api/v1/messages/{id}/resend"),
    ("post", "/api/v1/messages/{id}/status"),
    ("get", "/api/v1/whatsapp/messages/{id}"),
    ("get", "/api/v1/messages/status/{cmid}"),
    ("get", "/api/v1/conversations/{conversation}/messages"),
]


@pytest.mark.parametrize(("method", "url"), ROUTES)
def test_other_accounts_message_is_404_like_a_missing_one(
    client, other_client, anon, inbox, make_message, method, url
):
    message = make_message(inbox, customer_message_id="mine")
    target = url.format(id=message.id, cmid="mine", conversation=message.conversation_id)
    missing = url.format(
        id="7e57d004-2b97-4a5c-8d2e-000000000000", cmid="missing", conversation=999999
    )
    body = {"status": "DELIVERED"}
    foreign = getattr(other_client, method)(target, body, format="json")
    absent = getattr(other_client, method)(missing, body, format="json")
    assert foreign.status_code == absent.status_code == 404
    assert foreign.json()["error"]["code"] == absent.json()["error"]["code"] == "not_found"
    assert getattr(anon, method)(target, body, format="json").status_code == 401
    assert getattr(client, method)(target, body, format="json").status_code != 404


@pytest.mark.parametrize(
    "url", ["/api/v1/messages", "/api/v1/sms/messages", "/api/v1/conversations"]
)
def test_lists_require_a_key_and_hide_other_accounts(anon, other_client, url, inbox, make_message):
    make_message(inbox)
    assert anon.get(url).status_code == 401
    assert other_client.get(url).json()["results"] == []
