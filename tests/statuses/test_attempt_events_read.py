"""The read of the locked messages' stored events (``merge._attempt_events``) runs for every
webhook batch. It must read only those messages' rows, however many the tables hold.

Its first shape (``message_id = ANY(…)`` joined to the messages) let PostgreSQL's planner scan
the whole event table and test every row against every id: in the benchmark, with 80,000 events
stored, a batch of 400 statuses spent 17-22 ms there to find nothing, 22 % of the database's
statement time for the batch (bench/README.md)."""

import json
import uuid

import pytest
from django.db import connection

from inbox import rowsql
from statuses.services import merge

pytestmark = pytest.mark.requires_postgres("reads PostgreSQL's plan of the event read")

EVENTS_ELSEWHERE = 60_000
BATCH = 400


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _messages(cursor, template_id, prefix: str, count: int) -> list:
    """``count`` sent messages like ``template_id`` (attempt 2), in one statement."""
    cursor.execute(
        """
        INSERT INTO inbox_message (id, account_id, inbox_id, conversation_id, channel_type,
            direction, to_address, content, provider_message_id, attempt, status,
            error_code, error_title, error_detail, queued_at, status_updated_at, version,
            created_at, updated_at, origin)
        SELECT gen_random_uuid(), account_id, inbox_id, conversation_id, channel_type,
            direction, to_address, content, %s || g, 2, 'sent', '', '', '',
            now(), now(), 1, now(), now(), origin
        FROM inbox_message, generate_series(1, %s) AS g WHERE id = %s
        RETURNING id
        """,
        [prefix, count, template_id],
    )
    return sorted(row[0] for row in cursor.fetchall())


@pytest.fixture
def batch(make_message, inbox):
    """400 locked-shaped rows of messages without events, beside 30,000 messages with two
    events each (as in the benchmark: most messages have a few events)."""
    template = make_message(inbox, provider_message_id="wamid.template")
    with connection.cursor() as cursor:
        ids = _messages(cursor, template.id, "wamid.batch.", BATCH)
        _messages(cursor, template.id, "wamid.other.", EVENTS_ELSEWHERE // 2)
        cursor.execute(
            """
            INSERT INTO statuses_statusevent (inbox_id, message_id, attempt,
                provider_message_id, correlation_id, status, raw_status, occurred_at,
                received_at, source, outcome, error_code, error_title, error_detail, dedupe_key,
                duplicate_count)
            SELECT m.inbox_id, m.id, 2, m.provider_message_id, '', s, s, now(), now(),
                'webhook', 'recorded', '', '', '', m.provider_message_id || s, 0
            FROM inbox_message m, unnest(ARRAY['delivered', 'read']) AS s
            WHERE m.provider_message_id LIKE 'wamid.other.%%'
            """
        )
        # Three messages of the batch have events: one of the current attempt (2), one of an
        # older attempt, one stale. Only the first is the attempt's.
        for key, message_id, attempt, outcome in (
            ("current", ids[0], 2, "recorded"),
            ("older", ids[1], 1, "recorded"),
            ("stale", ids[2], 2, "stale"),
        ):
            cursor.execute(
                """
                INSERT INTO statuses_statusevent (inbox_id, message_id, attempt,
                    provider_message_id, correlation_id, status, raw_status, occurred_at,
                    received_at, source, outcome, error_code, error_title, error_detail,
                    dedupe_key, duplicate_count)
                VALUES (%s, %s, %s, '', '', 'delivered', 'delivered', now(), now(), 'webhook',
                    %s, '', '', '', %s, 0)
                """,
                [inbox.id, message_id, attempt, outcome, key],
            )
        cursor.execute("ANALYZE statuses_statusevent")
        cursor.execute("ANALYZE inbox_message")
    return {message_id: {"id": message_id, "attempt": 2} for message_id in ids}


def test_the_read_finds_the_current_attempts_events_only(batch):
    stored = merge._attempt_events(batch)

    assert {message_id: set(events) for message_id, events in stored.items()} == {
        min(batch): {"current"}
    }


def test_the_read_touches_the_batchs_events_not_the_whole_table(batch):
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        merge._attempt_events(batch)
    [(sql, params)] = statements  # whatever shape the read has, bound as the webhook binds it
    with rowsql.hot_cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    read = sum(
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for node in _plan_nodes(plan[0]["Plan"])
        if "Relation Name" in node  # rows read from any table: events, messages
    )
    # The batch's 3 events (and whatever 400 index probes meet), not a table's worth of rows
    # (60,003 events, 30,401 messages).
    assert read < BATCH, f"{read} rows read for a batch of {BATCH}"


def test_an_empty_batch_reads_nothing(db):
    assert merge._attempt_events({}) == {}
    assert merge._attempt_events({uuid.uuid4(): {"id": None, "attempt": 1}}) == {}
