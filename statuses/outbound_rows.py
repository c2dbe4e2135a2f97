"""The rows of a new outgoing message, in as few statements as the rules allow (issue #12).

``statuses.outbound.message_create_outgoing`` used to spend 18 statements on a brand-new
message (savepointed get-or-creates of contact and conversation, separate updates and
lookups). Here one statement finds a repeated ``customer_message_id`` or else upserts the
contact and the conversation (``INSERT … ON CONFLICT``, race-free: the conflicting row is
locked and returned, never missed), and one statement stores the message. A conversation's
``last_message_at`` never moves back when concurrent sends commit out of order.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import connection

from inbox import rowsql
from inbox import services as inbox_services
from inbox.models import Contact, Conversation, Inbox, Message


def _target_sql() -> str:
    contact_cols, contact_values, _ = rowsql.insert_parts(Contact(address="", inbox_id=None))
    conversation_cols, conversation_values, _ = rowsql.insert_parts(
        Conversation(), expressions={"contact_id": "(SELECT id FROM contact)"}
    )
    returned = [f"contact.{c}" for c in rowsql.columns(Contact)] + [
        f"conversation.{c}" for c in rowsql.columns(Conversation)
    ]
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
        )
        SELECT (SELECT id FROM existing), {", ".join(returned)}
        FROM (SELECT 1) AS one
        LEFT JOIN contact ON true LEFT JOIN conversation ON true
    """


_TARGET_SQL: str | None = None


def send_target(
    *, inbox: Inbox, address: str, customer_message_id: str | None, now: datetime
) -> tuple[uuid.UUID | None, Conversation | None]:
    """``(existing message id, None)`` for a repeated ``customer_message_id``, else
    ``(None, conversation)`` with the contact (``conversation.contact``) created if new and the
    conversation's ``last_message_at`` set to ``now``. Call inside the create's transaction."""
    if connection.vendor != "postgresql":
        return _send_target_portable(
            inbox=inbox, address=address, customer_message_id=customer_message_id, now=now
        )
    global _TARGET_SQL
    if _TARGET_SQL is None:
        _TARGET_SQL = _target_sql()
    contact = Contact(account_id=inbox.account_id, inbox_id=inbox.id, address=address)
    contact.created_at = now
    _, _, contact_params = rowsql.insert_parts(contact)
    conversation = Conversation(
        account_id=inbox.account_id, inbox_id=inbox.id, last_message_at=now, created_at=now
    )
    _, _, conversation_params = rowsql.insert_parts(
        conversation, expressions={"contact_id": "(SELECT id FROM contact)"}
    )
    # Bound by the server, results in binary (contacts and conversations have no JSON column).
    # Not in a pipeline with the transaction's BEGIN: psycopg's pipeline mode costs more CPU
    # than the round trip it saves (bench/README.md, fourth round).
    with rowsql.hot_cursor() as cursor:
        cursor.execute(
            _TARGET_SQL,
            [inbox.account_id, customer_message_id, *contact_params, *conversation_params],
        )
        row = cursor.fetchone()
    if row[0] is not None:
        return row[0], None
    n_contact = len(rowsql.columns(Contact))
    contact = rowsql.from_row(Contact, row[1 : 1 + n_contact])
    conversation = rowsql.from_row(Conversation, row[1 + n_contact :])
    conversation.contact = contact
    return None, conversation


def message_insert(message: Message) -> None:
    """Store the new message (one ``INSERT``; the change-feed trigger stamps its position)."""
    rowsql.insert(message)


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
