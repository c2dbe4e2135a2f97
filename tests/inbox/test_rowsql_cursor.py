"""``rowsql.hot_cursor`` keeps one psycopg cursor per connection (making and closing one cost
about as much Python as a small statement). Reusing it must never hand a statement another
statement's rows: not inside another hot statement's ``with`` block, not after the connection
was replaced."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inbox import rowsql

pytestmark = pytest.mark.requires_postgres("the kept cursor is PostgreSQL's (rowsql.hot_cursor)")


def _select(value: int) -> tuple[object, list]:
    with rowsql.hot_cursor() as cursor:
        cursor.execute("SELECT %s::int + 0", [value])
        return cursor.cursor, cursor.fetchall()


@pytest.mark.django_db
def test_one_statement_after_another_uses_the_kept_cursor_and_reads_its_own_rows():
    first, rows_1 = _select(1)
    second, rows_2 = _select(2)

    assert (rows_1, rows_2) == ([(1,)], [(2,)])
    assert first is second
    assert not second.closed  # handed back, not closed


@pytest.mark.django_db
def test_a_hot_statement_inside_another_ones_block_gets_its_own_cursor():
    with rowsql.hot_cursor() as outer:
        outer.execute("SELECT g FROM generate_series(1, 3) AS g")
        assert outer.fetchone() == (1,)
        inner, inner_rows = _select(42)  # e.g. a helper called while reading the outer rows
        assert outer.fetchall() == [(2,), (3,)]  # the outer rows are untouched
    assert inner_rows == [(42,)]
    assert inner is not outer.cursor
    assert inner.closed  # a fresh cursor is closed as before
    assert _select(7)[0] is outer.cursor  # and the kept one is free again


@pytest.mark.django_db
def test_the_statements_are_still_seen_by_query_capture():
    with CaptureQueriesContext(connection) as queries:
        _select(1)
        _select(2)
    assert [q["sql"] for q in queries.captured_queries] == ["SELECT $1::int + 0"] * 2


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_gets_a_new_cursor():
    before, _ = _select(1)
    connection.close()  # back to the pool, or closed

    after, rows = _select(3)

    assert rows == [(3,)]
    assert after is not before
    assert after.connection is connection.connection


@pytest.mark.django_db
def test_a_long_statement_is_converted_once_and_still_bound_right(monkeypatch):
    """psycopg converts a statement of more than 50 parameters again on every call; a hot
    one's conversion is kept (a new message's statement has ~70: statuses.outbound_rows)."""
    from psycopg import _queries

    calls = []
    convert = _queries._query2pg_nocache
    monkeypatch.setattr(_queries, "_query2pg_nocache", lambda *a: calls.append(1) or convert(*a))
    sql = "SELECT " + " + ".join(["%s::int"] * 60)
    for offset in (0, 1):
        with rowsql.hot_cursor() as cursor:
            cursor.execute(sql, [n + offset for n in range(60)])
            assert cursor.fetchone() == (sum(range(60)) + 60 * offset,)
    assert len(calls) == 1
