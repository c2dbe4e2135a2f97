"""A batch of accepted webhooks records its deliveries without model instances
(``inbox.rowsql.insert_values``): each row must hold exactly what ``save()`` of the same
delivery would have stored, skipped entries and all."""

import hashlib
import hmac
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import rowsql
from statuses import ingestion
from statuses.models import StatusEvent, WebhookDelivery
from statuses.providers.base import WebhookRequest

APP_SECRET = "test_app_secret"
FIELDS = [f.attname for f in WebhookDelivery._meta.concrete_fields if not f.primary_key]


def request_for(inbox, statuses: list[dict]) -> WebhookRequest:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": statuses,
    }
    body = json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": value}]}]}
    ).encode()
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest(
        method="POST",
        url="http://127.0.0.1" + inbox.webhook_path,
        path=inbox.webhook_path,
        query={},
        headers={
            "content-type": "application/json",
            "x-hub-signature-256": f"sha256={signature}",
            "authorization": "Bearer never-kept",
        },
        body=body,
        received_at=timezone.now(),
        remote_addr="127.0.0.1",
    )


def accepted(inbox, request: WebhookRequest) -> ingestion._Accepted:
    answer, parsed = ingestion._check(inbox, request)
    assert answer is None
    return ingestion._Accepted(0, inbox, request, parsed)


@pytest.mark.django_db
def test_a_batchs_rows_hold_what_save_would_store(inbox):
    clean = {"id": "wamid.r1", "status": "delivered", "timestamp": "1767225600"}
    items = [
        accepted(inbox, request_for(inbox, [clean])),
        # one entry applied, one malformed (no id) and one U+0000 in a note: a partial delivery
        accepted(inbox, request_for(inbox, [clean, {"status": "read\u0000"}])),
    ]
    values = [ingestion._accepted_values(item) for item in items]
    assert values[1]["verdict"] == WebhookDelivery.Verdict.PARTIAL  # the case is the one meant
    assert values[1]["notes"]

    ids = rowsql.insert_values(WebhookDelivery, values)
    saved = []
    for row in values:
        delivery = WebhookDelivery(**row)
        delivery.save()
        saved.append(delivery.id)

    def stored(pk):
        found = WebhookDelivery.objects.values(*FIELDS).get(pk=pk)
        found["body"] = bytes(found["body"])
        return found

    assert len(ids) == 2 and len(set(ids)) == 2
    for fast, slow in zip(ids, saved, strict=True):
        assert stored(fast) == stored(slow)
    first = stored(ids[0])
    assert first["headers"] == {  # credentials are never kept
        "content-type": "application/json",
        "x-hub-signature-256": items[0].request.headers["x-hub-signature-256"],
    }
    assert first["body"] == items[0].request.body
    assert "\x00" not in json.dumps(stored(ids[1])["notes"])


@pytest.mark.django_db
def test_every_field_must_be_given(inbox):
    values = ingestion._accepted_values(
        accepted(inbox, request_for(inbox, [{"id": "w", "status": "sent", "timestamp": "1"}]))
    )
    del values["detail"]
    with pytest.raises(KeyError):
        rowsql.insert_values(WebhookDelivery, [values])


def test_only_for_rows_the_database_numbers():
    from statuses.models import StatusEvent

    assert StatusEvent._meta.pk.db_returning  # numbered: allowed
    from inbox.models import Message

    with pytest.raises(ValueError, match="numbers"):
        rowsql.insert_values(Message, [])


@pytest.mark.requires_postgres("the records and the look-up in one statement are PostgreSQL's")
def test_a_batch_stores_its_records_and_finds_its_messages_in_one_statement(inbox, make_message):
    """A webhook batch's first statement stores the delivery records and looks up the messages
    their statuses name (``deliveries_store_and_find``): then the lock, the stored events, and
    the events with the messages. A status for an id nobody sent yet is parked, the others
    are applied."""
    for i in range(3):
        make_message(inbox, to=f"+1555000{i:04d}", provider_message_id=f"wamid.f{i}")
    items = [
        accepted(
            inbox,
            request_for(
                inbox, [{"id": f"wamid.f{i}", "status": "delivered", "timestamp": "1767225600"}]
            ),
        )
        for i in range(3)
    ]
    for index, item in enumerate(items):
        item.index = index

    with CaptureQueriesContext(connection) as queries:
        ingestion._apply(items)
    statements = [
        q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]
    ]  # the test's own transaction makes _apply's a savepoint
    first = statements[0]
    assert first.startswith('WITH d AS (INSERT INTO "statuses_webhookdelivery"')
    assert 'FROM "inbox_message" m JOIN unnest' in first
    # The records with the look-up, the lock, the stored events, the events with the messages.
    assert len(statements) == 4, statements

    early = accepted(
        inbox,
        request_for(
            inbox, [{"id": "wamid.early", "status": "delivered", "timestamp": "1767225600"}]
        ),
    )
    ingestion._apply([early])  # found nothing: the advisory lock, the look-up again, parked
    items.append(early)

    events = {e.provider_message_id: e for e in StatusEvent.objects.all()}
    assert {pid: e.outcome for pid, e in events.items()} == {
        "wamid.f0": StatusEvent.Outcome.APPLIED,
        "wamid.f1": StatusEvent.Outcome.APPLIED,
        "wamid.f2": StatusEvent.Outcome.APPLIED,
        "wamid.early": StatusEvent.Outcome.PARKED,
    }
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.body for d in deliveries] == [bytes(item.request.body) for item in items]
    for item, delivery in zip(items, deliveries, strict=True):
        pid = json.loads(item.request.body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
        assert events[pid].delivery_id == delivery.id  # each event linked to its own record
