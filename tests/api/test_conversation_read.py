"""``POST /api/v1/conversations/<id>/read``, ``read_by_agent_at`` on messages and the inbox's
``send_read_receipts`` (issue #14 part 2)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox.models import Message
from statuses.models import ReadReceipt
from tests.statuses.read_receipt_support import receipt_tasks, receive

pytestmark = pytest.mark.django_db


def read_url(conversation_id) -> str:
    return f"/api/v1/conversations/{conversation_id}/read"


def test_read_marks_inbound_messages_and_queues_one_receipt(client, inbox, make_message):
    messages = receive(inbox, 2)
    conversation = messages[0].conversation
    outgoing = make_message(inbox)

    response = client.post(read_url(conversation.id))

    assert response.status_code == 200
    assert response.json() == {
        "conversation": conversation.id,
        "marked_read": 2,
        "read_receipt": "queued",
    }
    assert receipt_tasks().count() == 1
    body = client.get(f"/api/v1/conversations/{conversation.id}/messages").json()
    shown = {m["id"]: m["read_by_agent_at"] for m in body["results"]}
    assert all(shown[str(m.id)] for m in messages)
    assert shown[str(outgoing.id)] is None
    stamp = Message.objects.get(id=messages[0].id).read_by_agent_at
    detail = client.get(f"/api/v1/messages/{messages[0].id}").json()
    assert detail["read_by_agent_at"] == stamp.isoformat().replace("+00:00", "Z")

    again = client.post(read_url(conversation.id))

    assert again.status_code == 200
    assert again.json()["marked_read"] == 0 and again.json()["read_receipt"] == "none"
    assert receipt_tasks().count() == 1


def test_read_of_another_accounts_conversation_is_404_and_marks_nothing(other_client, inbox):
    conversation = receive(inbox, 1)[0].conversation
    response = other_client.post(read_url(conversation.id))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Message.objects.filter(read_by_agent_at__isnull=False).exists()
    assert not ReadReceipt.objects.exists() and not receipt_tasks().exists()


@pytest.mark.parametrize("conversation_id", ["999999", "abc", "1.5"])
def test_read_of_a_missing_conversation_is_404(client, conversation_id):
    response = client.post(read_url(conversation_id))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_read_needs_a_key(anon, inbox):
    conversation = receive(inbox, 1)[0].conversation
    assert anon.post(read_url(conversation.id)).status_code == 401
    assert not Message.objects.filter(read_by_agent_at__isnull=False).exists()


def test_read_only_takes_post(client, inbox):
    conversation = receive(inbox, 1)[0].conversation
    assert client.get(read_url(conversation.id)).status_code == 405


def test_read_with_receipts_off_marks_but_queues_nothing(client, inbox):
    conversation = receive(inbox, 1)[0].conversation
    patched = client.patch(
        f"/api/v1/inboxes/{inbox.id}", {"send_read_receipts": False}, format="json"
    )
    assert patched.status_code == 200 and patched.json()["send_read_receipts"] is False

    response = client.post(read_url(conversation.id))

    assert response.json() == {
        "conversation": conversation.id,
        "marked_read": 1,
        "read_receipt": "off",
    }
    assert not ReadReceipt.objects.exists() and not receipt_tasks().exists()


def test_read_costs_a_bounded_number_of_queries(client, inbox):
    conversation = receive(inbox, 30)[0].conversation
    with CaptureQueriesContext(connection) as first:
        assert client.post(read_url(conversation.id)).json()["marked_read"] == 30
    with CaptureQueriesContext(connection) as again:
        assert client.post(read_url(conversation.id)).json()["marked_read"] == 0
    # Not one query per message: the key (read, last used), the conversation, the unread
    # reset, one check, then in one transaction the lock, the stamp, the receipt and its task.
    assert len(first) == 11
    # Reopening a read conversation: the conversation and one indexed check (the API key is
    # cached per process after the first request, inbox/caches.py).
    assert len(again) == 2


def test_inbox_send_read_receipts_defaults_on_and_is_settable(client):
    created = client.post(
        "/api/v1/inboxes",
        {
            "name": "Support",
            "channel_type": "whatsapp_360dialog",
            "config": {"api_key": "k", "webhook_token": "t"},
        },
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["send_read_receipts"] is True
    quiet = client.post(
        "/api/v1/inboxes",
        {
            "name": "Quiet",
            "channel_type": "whatsapp_360dialog",
            "config": {"api_key": "k", "webhook_token": "t"},
            "send_read_receipts": False,
        },
        format="json",
    )
    assert quiet.json()["send_read_receipts"] is False
    inbox_id = quiet.json()["id"]
    assert client.get(f"/api/v1/inboxes/{inbox_id}").json()["send_read_receipts"] is False
    turned_on = client.patch(
        f"/api/v1/inboxes/{inbox_id}", {"send_read_receipts": True}, format="json"
    )
    assert turned_on.json()["send_read_receipts"] is True
    bad = client.patch(
        f"/api/v1/inboxes/{inbox_id}", {"send_read_receipts": "maybe"}, format="json"
    )
    assert bad.status_code == 400
    assert "send_read_receipts" in bad.json()["error"]["message"]


def test_schema_documents_the_read_endpoint(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/conversations/{conversation_id}/read"]["post"]
    assert set(operation["responses"]) >= {"200", "404"}
    properties = schema["components"]["schemas"]["ConversationRead"]["properties"]
    assert set(properties) == {"conversation", "marked_read", "read_receipt"}
    assert "read_by_agent_at" in schema["components"]["schemas"]["Message"]["properties"]
    assert "send_read_receipts" in schema["components"]["schemas"]["Inbox"]["properties"]
