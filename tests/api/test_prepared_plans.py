"""The hot paths' prepared statements are planned once, and that one plan uses the indexes.

PostgreSQL plans a prepared statement anew on every call while its generic plan looks dearer
than the custom ones; for a new message's one statement and the webhook's ``= ANY($1)`` it
always did, ~0.8 ms of a create's ~2.2 ms of PostgreSQL CPU (bench/README.md, tenth round).
Each connection now runs generic plans (``config.postgres``), so a generic plan has to be a
good one: one that reads a partial index only if the statement's text implies its condition.
"""

import json

import pytest
from django.db import connection

from inbox.models import Message
from statuses import ingestion, outbound
from tests.statuses.test_delivery_rows import request_for

pytestmark = pytest.mark.requires_postgres("reads PostgreSQL's prepared statements and plans")

BIG_TABLES = {
    "inbox_message",
    "inbox_contact",
    "inbox_conversation",
    "statuses_statusevent",
    "statuses_webhookdelivery",
    "django_tasks_database_dbtaskresult",
}
T0 = 1767225600
# Partial indexes of inbox_message whose condition holds ``status = 'queued'`` (inbox.models).
QUEUED_PARTIAL_INDEXES = {"message_interactive_queued", "message_open_status"}


def run_the_hot_paths(client, sms_inbox, inbox, make_message, times: int = 7) -> None:
    """More calls than PostgreSQL's five custom plans before it weighs the generic one."""
    for i in range(times):
        body = {"inbox": str(sms_inbox.id), "to": f"+1650555{i:04d}", "content": "Shipped."}
        response = client.post(
            "/api/v1/messages", {**body, "customer_message_id": f"plan-{i}"}, format="json"
        )
        assert response.status_code == 202, response.content
        # An agent's reply in that conversation: the message and its task as two inserts.
        conversation = Message.objects.get(customer_message_id=f"plan-{i}").conversation
        _, created = outbound.message_create_outgoing(
            account=sms_inbox.account, inbox=sms_inbox, to="", content="Reply.",
            conversation=conversation,
        )  # fmt: skip
        assert created
    messages = [make_message(inbox, provider_message_id=f"wamid.plan{i}") for i in range(times)]
    for i, message in enumerate(messages):
        statuses = [{"id": message.provider_message_id, "status": "delivered", "timestamp": T0}]
        if i % 2:  # a second status for another message: the batch shapes too
            other = messages[i - 1].provider_message_id
            statuses.append({"id": other, "status": "read", "timestamp": str(T0 + i)})
        # and a status for a message not known yet: parked under its id's advisory lock
        statuses.append({"id": f"wamid.unknown{i}", "status": "sent", "timestamp": T0})
        answers = ingestion.webhooks_receive([(inbox, request_for(inbox, statuses))])
        assert answers[0].http_status == 200


def prepared_statements() -> list[tuple[str, str, int, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, statement, generic_plans, custom_plans, cardinality(parameter_types) "
            "FROM pg_prepared_statements WHERE NOT from_sql"
        )
        return cursor.fetchall()


def generic_plan(name: str, parameters: int) -> dict:
    """The plan the statement runs (the connection forces the generic one), without running it."""
    arguments = f"({', '.join(['NULL'] * parameters)})" if parameters else ""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{arguments}")
        found = cursor.fetchone()[0]
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def test_connections_run_the_generic_plans_of_prepared_statements(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"


def test_each_hot_statement_is_planned_once(client, sms_inbox, inbox, make_message):
    run_the_hot_paths(client, sms_inbox, inbox, make_message)

    found = prepared_statements()
    texts = " ".join(statement for _, statement, *_ in found)
    # Among them: the create's one statement, the reply's two inserts, the webhook's lock of
    # its messages and the advisory lock of an id not known yet.
    assert "WITH existing AS" in texts
    assert 'INSERT INTO "django_tasks_database_dbtaskresult"' in texts
    assert "= ANY($1::uuid[])" in texts and "FOR UPDATE" in texts
    assert "pg_advisory_xact_lock" in texts
    for name, statement, generic, custom, _ in found:
        assert custom == 0, (name, custom, statement[:200])
        assert generic >= 1, (name, statement[:200])


def test_the_generic_plan_of_each_hot_statement_reads_by_index(
    client, sms_inbox, inbox, make_message
):
    run_the_hot_paths(client, sms_inbox, inbox, make_message, times=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        # The tables are tiny here: any plan that could use an index now does.
        cursor.execute("SET LOCAL enable_seqscan = off")

    found = prepared_statements()
    assert any("AS backlog" in statement for _, statement, *_ in found)
    for name, statement, _, _, parameters in found:
        plan = generic_plan(name, parameters)
        scans = [n for n in nodes(plan) if n.get("Relation Name") in BIG_TABLES]
        assert all(n["Node Type"] != "Seq Scan" for n in scans), (statement[:300], scans)
        if "AS backlog" in statement:
            # The fairness count of an interactive send (a campaign's has none) reads a partial
            # index on the queued sends, which a generic plan may use only because the text
            # holds the index's conditions (statuses.sending.send_priority_sql). With them as
            # parameters it read ``message_account_created``: every message of the last hour.
            # (A bitmap scan names its index on its child node, which names no table.)
            indexes = {n["Index Name"] for n in nodes(plan) if "Index Name" in n}
            assert indexes & QUEUED_PARTIAL_INDEXES, indexes
