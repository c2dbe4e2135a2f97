"""The change feed's triggers (inbox/change_feed.py) survive schema changes: SQLite rebuilds a
table to alter it, which drops its triggers, and every ``migrate`` puts them back."""

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection

from inbox.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

TRIGGERS = {"inbox_message_change_insert", "inbox_message_change_update"}


def triggers():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'inbox_message'::regclass "
                "AND NOT tgisinternal"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [Message._meta.db_table],
            )
        return {name for (name,) in cursor.fetchall()}


def test_triggers_come_back_after_a_table_rebuild(inbox, make_message):
    assert triggers() >= TRIGGERS
    if connection.vendor == "sqlite":
        with connection.schema_editor() as editor:
            editor._remake_table(Message)  # what AlterField/AddConstraint do on SQLite
    else:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER inbox_message_change_update ON inbox_message")
    assert not triggers() >= TRIGGERS

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # end of migrate
    assert triggers() >= TRIGGERS
    message = make_message(inbox)
    before = Message.objects.get(id=message.id).change_seq
    Message.objects.filter(id=message.id).update(content="changed")
    assert Message.objects.get(id=message.id).change_seq > before
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # idempotent
    assert triggers() >= TRIGGERS
