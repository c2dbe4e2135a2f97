"""The change feed's position on every message, stamped by the database (docs/change-feed.md).

A trigger sets ``change_xid`` (the writing transaction's id; 0 on SQLite) and ``change_seq`` (a
number taken at the write) on every insert and update of a message, whatever writes it: the
status services, sends, resends, the admin, raw SQL. No write path can forget to move a message
in the feed, and the status hot path keeps its statement count.

``install`` is idempotent. The migration calls it once, and ``post_migrate`` calls ``ensure``
after every ``migrate``: SQLite rebuilds a table to alter it (copy, drop, rename), which drops
its triggers.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "inbox_message"

_POSTGRES_INSTALL = [
    "CREATE SEQUENCE IF NOT EXISTS {table}_change_seq",
    # pg_current_xact_id() is the top-level transaction's id, also inside savepoints.
    """CREATE OR REPLACE FUNCTION {table}_change_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           NEW.change_xid := pg_current_xact_id()::text::bigint;
           NEW.change_seq := nextval('{table}_change_seq');
           RETURN NEW;
       END $$""",
    """CREATE OR REPLACE TRIGGER {table}_change_insert BEFORE INSERT ON {table}
       FOR EACH ROW EXECUTE FUNCTION {table}_change_stamp()""",
    # An UPDATE that changes nothing does not move the message in the feed.
    """CREATE OR REPLACE TRIGGER {table}_change_update BEFORE UPDATE ON {table}
       FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
       EXECUTE FUNCTION {table}_change_stamp()""",
]
_POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS {table}_change_update ON {table}",
    "DROP TRIGGER IF EXISTS {table}_change_insert ON {table}",
    "DROP FUNCTION IF EXISTS {table}_change_stamp()",
    "DROP SEQUENCE IF EXISTS {table}_change_seq",
]
# SQLite has one writer at a time (IMMEDIATE transactions), so "the highest number so far + 1",
# read inside the writing transaction, is unique and grows in commit order. A trigger does not
# fire itself again (recursive_triggers is off, SQLite's default).
_SQLITE_STAMP = """UPDATE {table} SET change_xid = 0,
    change_seq = (SELECT COALESCE(max(change_seq), 0) + 1 FROM {table})
    WHERE rowid = NEW.rowid;"""
_SQLITE_INSTALL = [
    "CREATE INDEX IF NOT EXISTS {table}_change_seq ON {table} (change_seq)",
    "CREATE TRIGGER IF NOT EXISTS {table}_change_insert AFTER INSERT ON {table} "
    f"FOR EACH ROW BEGIN {_SQLITE_STAMP} END",
    "CREATE TRIGGER IF NOT EXISTS {table}_change_update AFTER UPDATE ON {table} "
    f"FOR EACH ROW BEGIN {_SQLITE_STAMP} END",
]
_SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS {table}_change_update",
    "DROP TRIGGER IF EXISTS {table}_change_insert",
    "DROP INDEX IF EXISTS {table}_change_seq",
]


def _statements(vendor: str, install: bool) -> list[str]:
    statements = {
        ("postgresql", True): _POSTGRES_INSTALL,
        ("postgresql", False): _POSTGRES_REMOVE,
        ("sqlite", True): _SQLITE_INSTALL,
        ("sqlite", False): _SQLITE_REMOVE,
    }.get((vendor, install))
    if statements is None:
        raise NotImplementedError(f"The change feed needs PostgreSQL or SQLite, not {vendor}.")
    return [statement.format(table=TABLE) for statement in statements]


def install(connection: BaseDatabaseWrapper) -> None:
    """Create (or re-create) the sequence, trigger function and triggers; idempotent."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, install=True):
            cursor.execute(statement)


def ensure(connection: BaseDatabaseWrapper) -> None:
    """``install`` unless the triggers are there (after every ``migrate``). On PostgreSQL,
    re-creating a trigger locks the table against writers for a moment: skip it when present."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'inbox_message'::regclass "
                "AND tgname IN ('inbox_message_change_insert', 'inbox_message_change_update')"
            )
            if cursor.fetchone()[0] == 2:
                return
    install(connection)


def remove(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, install=False):
            cursor.execute(statement)


def backfill(connection: BaseDatabaseWrapper) -> None:
    """Number existing messages in their former feed order (``updated_at, id``), before
    every later change (``change_xid`` 0). Runs before ``install`` (no triggers yet)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "UPDATE inbox_message AS m SET change_seq = o.n FROM ("
                "SELECT id, row_number() OVER (ORDER BY updated_at, id) AS n FROM inbox_message"
                ") AS o WHERE m.id = o.id"
            )
        else:
            cursor.execute(
                "UPDATE inbox_message SET change_seq = (SELECT o.n FROM ("
                "SELECT id, row_number() OVER (ORDER BY updated_at, id) AS n FROM inbox_message"
                ") AS o WHERE o.id = inbox_message.id)"
            )


def start_sequence(connection: BaseDatabaseWrapper) -> None:
    """After ``backfill`` and ``install``: new numbers start above the backfilled ones."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval('inbox_message_change_seq', "
            "(SELECT COALESCE(max(change_seq), 0) + 1 FROM inbox_message), false)"
        )
