"""``rowsql.insert_many`` writes a batch of rows in one statement whose text does not depend on
the number of rows (one ``unnest`` array per column), and ``hot_cursor``'s statements are
prepared once per connection. What goes in must come back exactly: bytes, JSON, NULLs, and a
value too long for its column is refused, never cut."""

import hashlib
from datetime import timedelta

import pytest
from django.db import DataError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import rowsql
from statuses.models import WebhookDelivery

pytestmark = pytest.mark.requires_postgres("the unnest insert and prepared statements (rowsql)")


def _delivery(inbox, n: int, **fields) -> WebhookDelivery:
    body = f'{{"n": {n}}}\x00\xff'.encode("latin-1")
    values = {
        "inbox": inbox,
        "channel_type": "whatsapp_cloud",
        "method": "POST",
        "path": f"/webhooks/whatsapp_cloud/{n}/",
        "headers": {"x-hub-signature-256": f"sha256={n}", "content-type": "application/json"},
        "body": body,
        "body_size": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "verdict": WebhookDelivery.Verdict.ACCEPTED,
        "http_status": 200,
        "detail": "",
        "status_count": n,
        "notes": [{"kind": "unknown_message", "ids": [n, None, "ü"]}] if n % 2 else [],
        "received_at": timezone.now() - timedelta(seconds=n),
    }
    values.update(fields)
    return WebhookDelivery(**values)


def _stored(delivery: WebhookDelivery) -> tuple:
    fields = ("inbox_id", "channel_type", "method", "path", "headers", "body", "body_size")
    fields += ("body_sha256", "verdict", "http_status", "status_count", "notes", "received_at")
    return tuple(
        bytes(getattr(delivery, f)) if f == "body" else getattr(delivery, f) for f in fields
    )


def test_a_batch_is_stored_exactly_and_gets_its_keys_in_order(inbox):
    rows = [_delivery(inbox, n) for n in range(1, 8)] + [_delivery(None, 8)]

    returned = rowsql.insert_many(rows)

    assert returned is rows
    assert all(row.pk is not None and not row._state.adding for row in rows)
    assert [row.pk for row in rows] == sorted(row.pk for row in rows)  # numbered in order
    for row in rows:
        assert _stored(WebhookDelivery.objects.get(pk=row.pk)) == _stored(row)


def test_the_statement_is_the_same_for_one_row_and_for_seven(inbox):
    with CaptureQueriesContext(connection) as queries:
        rowsql.insert_many([_delivery(inbox, 1)])
        rowsql.insert_many([_delivery(inbox, n) for n in range(2, 9)])

    first, second = (q["sql"] for q in queries.captured_queries)
    assert first == second
    assert "unnest(" in first
    assert first.count("$") == len(rowsql.columns(WebhookDelivery)) - 1  # one array per column


def test_a_value_too_long_for_its_column_is_refused_not_cut(inbox):
    too_long = _delivery(inbox, 2, path="/" + "p" * 500)  # path is varchar(500)

    with pytest.raises(DataError), transaction.atomic():
        rowsql.insert_many([_delivery(inbox, 1), too_long])

    assert not WebhookDelivery.objects.exists()


def test_rows_with_and_without_their_keys_are_not_mixed(inbox):
    with pytest.raises(ValueError):
        rowsql.insert_many([_delivery(inbox, 1), _delivery(inbox, 2, id=10**9)])


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _hot_select(value: int, factor: int = 7919) -> list:
    with rowsql.hot_cursor() as cursor:
        cursor.execute(f"SELECT %s::int * {factor}", [value])
        return cursor.fetchall()


@pytest.mark.django_db
def test_a_hot_statement_is_prepared_once_on_its_connection_and_reused():
    assert _hot_select(1) == [(7919,)]
    assert _hot_select(2) == [(15838,)]

    assert [s for s in _prepared() if "7919" in s] == ["SELECT $1::int * 7919"]


@pytest.mark.django_db
@override_settings(TICKMARK_PREPARED_STATEMENTS=False)
def test_with_prepared_statements_off_nothing_is_prepared():
    assert _hot_select(3, factor=7907) == [(23721,)]  # a text no earlier test prepared

    assert not [s for s in _prepared() if "7907" in s]
