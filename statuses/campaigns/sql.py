"""The PostgreSQL form of a batch's bulk inserts: one statement each, whose rows travel as one
JSON document (``jsonb_to_recordset``), so the statement text is the same whatever the batch
size and the driver quotes one string instead of thousands of values (quoting arrays value by
value cost more than the inserts themselves: bench/README.md). ``materialise`` uses the ORM's
``bulk_create`` on SQLite instead.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import datetime

from django.db import connection

from inbox.models import CampaignBatch, Contact, Conversation, Message


def batches_insert(campaign_id: uuid.UUID, batches: list[list[list]]) -> None:
    """Store a new campaign's batches of recipients (one statement, one JSON document)."""
    table = CampaignBatch._meta.db_table
    sql = (
        f"INSERT INTO {table} (campaign_id, number, recipients) "  # noqa: S608
        "SELECT %s, b.n - 1, b.r FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS b(r, n)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, json.dumps(batches)])


def contacts_insert(account_id: int, inbox_id: uuid.UUID, addresses: list[str], now: datetime):
    """Insert the contacts not there yet (one statement; a known address is left alone). A new
    contact has not opted out (DESIGN §14: the consent columns have no database default)."""
    table = Contact._meta.db_table
    sql = (
        f"INSERT INTO {table} (account_id, inbox_id, address, name, token, created_at, "  # noqa: S608
        "opted_out, opt_out_source, marketing_opted_out, marketing_opt_out_source) "
        "SELECT %s, %s, u.a, '', u.t, %s, false, '', false, '' "
        "FROM jsonb_to_recordset(%s::jsonb) AS u(a varchar, t varchar) ORDER BY u.a "
        "ON CONFLICT DO NOTHING"
    )
    rows = json.dumps([{"a": a, "t": secrets.token_urlsafe()} for a in addresses])
    with connection.cursor() as cursor:
        cursor.execute(sql, [account_id, inbox_id, now, rows])


def conversations_insert(
    account_id: int, inbox_id: uuid.UUID, contact_ids: list[int], now: datetime
) -> None:
    """Insert the conversations not there yet (one per contact; one statement)."""
    table = Conversation._meta.db_table
    sql = (
        f"INSERT INTO {table} (account_id, inbox_id, contact_id, last_message_at, "  # noqa: S608
        "unread_count, created_at) "
        "SELECT %s, %s, u.c, %s, 0, %s FROM jsonb_to_recordset(%s::jsonb) AS u(c bigint) "
        "ORDER BY u.c ON CONFLICT DO NOTHING"
    )
    rows = json.dumps([{"c": c} for c in sorted(contact_ids)])
    with connection.cursor() as cursor:
        cursor.execute(sql, [account_id, inbox_id, now, now, rows])


def messages_insert(
    *,
    campaign_id: uuid.UUID,
    account_id: int,
    inbox_id: uuid.UUID,
    channel_type: str,
    rows: list[tuple[uuid.UUID, int, str, str, dict | None, str | None]],
    now: datetime,
) -> list[uuid.UUID]:
    """Insert queued messages (id, conversation, to, content, template, customer id); return
    the ids inserted (a ``customer_message_id`` taken meanwhile skips its row)."""
    table = Message._meta.db_table
    sql = (
        f"INSERT INTO {table} (id, account_id, inbox_id, conversation_id, channel_type, "  # noqa: S608
        "direction, to_address, content, template, customer_message_id, campaign_id, attempt, "
        "status, error_code, error_title, error_detail, queued_at, status_updated_at, version, "
        "origin, created_at, updated_at) "
        "SELECT u.id, %s, %s, u.c, %s, 'outgoing', u.a, u.b, u.t, u.k, %s, 1, 'queued', '', '', "
        "'', %s, %s, 1, 'tickmark', %s, %s "
        "FROM jsonb_to_recordset(%s::jsonb) "
        "AS u(id uuid, c bigint, a varchar, b text, t jsonb, k varchar) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    document = json.dumps(
        [
            {"id": str(mid), "c": cid, "a": to, "b": content, "t": template, "k": key}
            for mid, cid, to, content, template, key in rows
        ]
    )
    params = [account_id, inbox_id, channel_type, campaign_id, now, now, now, now, document]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def contact_ids(inbox_id: uuid.UUID, addresses: list[str]) -> dict[str, int]:
    """{address: contact id} of the inbox's contacts among ``addresses`` (one query)."""
    table = Contact._meta.db_table
    sql = (
        f"SELECT address, id FROM {table} WHERE inbox_id = %s AND address IN "  # noqa: S608
        "(SELECT jsonb_array_elements_text(%s::jsonb))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [inbox_id, json.dumps(addresses)])
        return dict(cursor.fetchall())


def conversation_ids(inbox_id: uuid.UUID, contact_ids: list[int]) -> dict[int, int]:
    """{contact id: conversation id} in the inbox (one query)."""
    table = Conversation._meta.db_table
    sql = (
        f"SELECT contact_id, id FROM {table} WHERE inbox_id = %s AND contact_id IN "  # noqa: S608
        "(SELECT jsonb_array_elements_text(%s::jsonb)::bigint)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [inbox_id, json.dumps(contact_ids)])
        return dict(cursor.fetchall())


def customer_ids_taken(account_id: int, ids: list[str]) -> set[str]:
    """The ``customer_message_id`` values among ``ids`` the account already used (one query)."""
    table = Message._meta.db_table
    sql = (
        f"SELECT customer_message_id FROM {table} WHERE account_id = %s "  # noqa: S608
        "AND customer_message_id IN (SELECT jsonb_array_elements_text(%s::jsonb))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [account_id, json.dumps(ids)])
        return {row[0] for row in cursor.fetchall()}
