"""The rows of a new outgoing message, in as few statements as the rules allow (issue #12).

``statuses.outbound.message_create_outgoing`` used to spend 18 statements on a brand-new
message (savepointed get-or-creates of contact and conversation, separate updates and
lookups). Here one statement finds a repeated ``customer_message_id`` or else upserts the
contact and the conversation (``INSERT … ON CONFLICT``, race-free: the conflicting row is
locked and returned, never missed) and stores the message and its send task. A
conversation's ``last_message_at`` never moves back when concurrent sends commit out of order.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from django.db import connection
from django_tasks_db.models import DBTaskResult

from inbox import rowsql
from inbox import services as inbox_services
from inbox.models import Contact, Conversation, Inbox, Message
from statuses.models import WebhookSubscription


def _store_sql(message_cols: str, message_values: str, task_cols: str, task_values: str) -> str:
    contact_cols, contact_values, _ = rowsql.insert_parts(Contact(address="", inbox_id=None))
    conversation_cols, conversation_values, _ = rowsql.insert_parts(
        Conversation(), expressions={"contact_id": "(SELECT id FROM contact)"}
    )
    returned = [f"contact.{c}" for c in rowsql.columns(Contact)] + [
        f"conversation.{c}" for c in rowsql.columns(Conversation)
    ]
    task_table = connection.ops.quote_name(DBTaskResult._meta.db_table)
    subscriptions = WebhookSubscription._meta.db_table
    # Identifiers and column lists from the models only; every value is a bound parameter.
    return f"""
        WITH existing AS (
            SELECT id FROM inbox_message WHERE account_id = %s AND customer_message_id = %s
        ),
        contact AS (
            INSERT INTO inbox_contact ({contact_cols})
            SELECT {contact_values} WHERE NOT EXISTS (SELECT 1 FROM existing)
            ON CONFLICT (inbox_id, address) DO UPDATE SET address = EXCLUDED.address
            RETURNING *
        ),
        conversation AS (
            INSERT INTO inbox_conversation ({conversation_cols})
            SELECT {conversation_values} FROM contact
            ON CONFLICT (inbox_id, contact_id) DO UPDATE SET last_message_at =
                GREATEST(inbox_conversation.last_message_at, EXCLUDED.last_message_at)
            RETURNING *
        ),
        message AS (
            INSERT INTO inbox_message ({message_cols}) SELECT {message_values} FROM conversation
            RETURNING id
        ),
        task AS (
            INSERT INTO {task_table} ({task_cols}) SELECT {task_values} FROM message
        )
        SELECT (SELECT id FROM existing),
            EXISTS (
                SELECT 1 FROM {subscriptions}
                WHERE account_id = %s AND is_active AND events @> %s::jsonb
            ),
            {", ".join(returned)}
        FROM (SELECT 1) AS one
        LEFT JOIN contact ON true LEFT JOIN conversation ON true
    """


def message_store(
    *,
    inbox: Inbox,
    address: str,
    customer_message_id: str | None,
    now: datetime,
    message: Message,
    task: DBTaskResult,
    task_expressions: dict[str, rowsql.Expression],
) -> tuple[uuid.UUID | None, Conversation | None, bool]:
    """Store a new outgoing ``message`` to ``address`` and its send ``task``, in one statement on
    PostgreSQL: the repeat check, the contact and conversation upserts (the conversation's
    ``last_message_at`` set to ``now``), the message, its task, and whether any integrator is
    subscribed to ``message.created``. Call inside the create's transaction; a refusal found
    after it (consent, the service window) raises and rolls it all back.

    Returns ``(existing message id, None, False)`` for a repeated ``customer_message_id`` (then
    nothing was written), else ``(None, conversation, subscribed)`` with the contact as
    ``conversation.contact`` and ``message.conversation`` set. ``subscribed`` is False only
    when no active subscription can want the event (its outbox rows are then skipped); True
    means "ask" (``statuses.outgoing`` reads and pins the subscriptions)."""
    if connection.vendor != "postgresql":
        existing_id, conversation = _send_target_portable(
            inbox=inbox, address=address, customer_message_id=customer_message_id, now=now
        )
        if existing_id is not None:
            return existing_id, None, False
        message.conversation = conversation
        rowsql.insert(message)
        rowsql.insert(task, expressions=task_expressions)
        return None, conversation, True
    contact = Contact(account_id=inbox.account_id, inbox_id=inbox.id, address=address)
    contact.created_at = now
    _, _, contact_params = rowsql.insert_parts(contact)
    conversation = Conversation(
        account_id=inbox.account_id, inbox_id=inbox.id, last_message_at=now, created_at=now
    )
    _, _, conversation_params = rowsql.insert_parts(
        conversation, expressions={"contact_id": "(SELECT id FROM contact)"}
    )
    message_cols, message_values, message_params = rowsql.insert_parts(
        message, expressions={"conversation_id": "conversation.id"}
    )
    task_cols, task_values, task_params = rowsql.insert_parts(task, expressions=task_expressions)
    sql = _STORE_SQL.get((message_cols, message_values, task_cols, task_values))
    if sql is None:
        sql = _STORE_SQL[(message_cols, message_values, task_cols, task_values)] = _store_sql(
            message_cols, message_values, task_cols, task_values
        )
    params = [
        inbox.account_id,
        customer_message_id,
        *contact_params,
        *conversation_params,
        *message_params,
        *task_params,
        inbox.account_id,
        _MESSAGE_CREATED,
    ]
    # Bound by the server, results in binary (contacts and conversations have no JSON column).
    # One statement, not four: each round trip costs the request's thread a wait and the GIL
    # back, which under daphne's threads cost more than the statement (bench/README.md).
    with rowsql.hot_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row[0] is not None:
        return row[0], None, False
    n_contact = len(rowsql.columns(Contact))
    contact = rowsql.from_row(Contact, row[2 : 2 + n_contact])
    conversation = rowsql.from_row(Conversation, row[2 + n_contact :])
    conversation.contact = contact
    message.conversation = conversation
    message._state.adding = False
    message._state.db = connection.alias
    task._state.adding = False
    task._state.db = connection.alias
    return None, conversation, row[1]


# The statement's text, per shape of its message and task parts (a handful in a process's life).
_STORE_SQL: dict[tuple[str, str, str, str], str] = {}
_MESSAGE_CREATED = json.dumps([WebhookSubscription.EventType.MESSAGE_CREATED.value])


def _send_target_portable(
    *, inbox: Inbox, address: str, customer_message_id: str | None, now: datetime
) -> tuple[uuid.UUID | None, Conversation | None]:
    """The same answer through the ORM, for the embedded SQLite mode (``make run``): SQLite has
    no data-modifying CTEs, and one process writes there anyway."""
    if customer_message_id:
        existing = (
            Message.objects.filter(
                account_id=inbox.account_id, customer_message_id=customer_message_id
            )
            .values_list("id", flat=True)
            .first()
        )
        if existing is not None:
            return existing, None
    contact = inbox_services.contact_get_or_create(inbox=inbox, address=address)
    conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
    Conversation.objects.filter(id=conversation.id, last_message_at__lt=now).update(
        last_message_at=now
    )
    conversation.last_message_at = max(conversation.last_message_at, now)
    conversation.contact = contact
    return None, conversation
