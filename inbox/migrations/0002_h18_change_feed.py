"""The change feed's position on every message (docs/change-feed.md).

``change_xid``/``change_seq`` are stamped by a database trigger on every insert and update of a
message, whatever writes it (the status services, sends, resends, the admin, raw SQL), so no write
path can forget to move a message in the feed. Existing rows are numbered in their old feed order
(``updated_at, id``) with ``change_xid = 0``: before every later change.
"""

from django.db import migrations, models

POSTGRES_INSTALL = [
    "CREATE SEQUENCE {table}_change_seq",
    """UPDATE {table} AS m SET change_seq = o.n
       FROM (SELECT id, row_number() OVER (ORDER BY updated_at, id) AS n FROM {table}) AS o
       WHERE m.id = o.id""",
    "SELECT setval('{table}_change_seq', (SELECT COALESCE(max(change_seq), 0) + 1 FROM {table}),"
    " false)",
    # pg_current_xact_id() is the top-level transaction's id, also inside savepoints.
    """CREATE FUNCTION {table}_change_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           NEW.change_xid := pg_current_xact_id()::text::bigint;
           NEW.change_seq := nextval('{table}_change_seq');
           RETURN NEW;
       END $$""",
    """CREATE TRIGGER {table}_change_insert BEFORE INSERT ON {table}
       FOR EACH ROW EXECUTE FUNCTION {table}_change_stamp()""",
    # An UPDATE that changes nothing does not move the message in the feed.
    """CREATE TRIGGER {table}_change_update BEFORE UPDATE ON {table}
       FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
       EXECUTE FUNCTION {table}_change_stamp()""",
]
POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS {table}_change_update ON {table}",
    "DROP TRIGGER IF EXISTS {table}_change_insert ON {table}",
    "DROP FUNCTION IF EXISTS {table}_change_stamp()",
    "DROP SEQUENCE IF EXISTS {table}_change_seq",
]
# SQLite has one writer at a time (IMMEDIATE transactions), so "the highest number so far + 1",
# read inside the writing transaction, is unique and grows in commit order. A trigger does not
# fire itself again (recursive_triggers is off, SQLite's default).
SQLITE_INSTALL = [
    """UPDATE {table} SET change_seq = (
           SELECT o.n FROM (
               SELECT id, row_number() OVER (ORDER BY updated_at, id) AS n FROM {table}
           ) AS o WHERE o.id = {table}.id)""",
    "CREATE INDEX {table}_change_seq ON {table} (change_seq)",
    """CREATE TRIGGER {table}_change_insert AFTER INSERT ON {table} FOR EACH ROW BEGIN
           UPDATE {table} SET change_xid = 0,
               change_seq = (SELECT COALESCE(max(change_seq), 0) + 1 FROM {table})
           WHERE rowid = NEW.rowid;
       END""",
    """CREATE TRIGGER {table}_change_update AFTER UPDATE ON {table} FOR EACH ROW BEGIN
           UPDATE {table} SET change_xid = 0,
               change_seq = (SELECT COALESCE(max(change_seq), 0) + 1 FROM {table})
           WHERE rowid = NEW.rowid;
       END""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS {table}_change_update",
    "DROP TRIGGER IF EXISTS {table}_change_insert",
    "DROP INDEX IF EXISTS {table}_change_seq",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        table = apps.get_model("inbox", "Message")._meta.db_table
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise NotImplementedError(
                f"The change feed needs PostgreSQL or SQLite, not {schema_editor.connection.vendor}"
            )
        for statement in statements:
            schema_editor.execute(statement.format(table=table))

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="change_seq",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="message",
            name="change_xid",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_INSTALL, "sqlite": SQLITE_INSTALL}),
            _run({"postgresql": POSTGRES_REMOVE, "sqlite": SQLITE_REMOVE}),
        ),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                fields=["account", "change_xid", "change_seq"], name="message_account_change"
            ),
        ),
    ]
