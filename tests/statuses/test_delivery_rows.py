"""A batch of accepted webhooks records its deliveries without model instances
(``inbox.rowsql.insert_values``): each row must hold exactly what ``save()`` of the same
delivery would have stored, skipped entries and all."""

import hashlib
import hmac
import json

import pytest
from django.utils import timezone

from inbox import rowsql
from statuses import ingestion
from statuses.models import WebhookDelivery
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
