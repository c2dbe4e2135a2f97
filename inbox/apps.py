from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate

from inbox import change_feed


class InboxConfig(AppConfig):
    name = "inbox"

    def ready(self) -> None:
        post_migrate.connect(_ensure_change_feed_triggers, sender=self)


def _ensure_change_feed_triggers(using: str = "default", **kwargs: Any) -> None:
    """Re-create the change feed's triggers after every ``migrate``: SQLite rebuilds a table to
    alter it, which drops its triggers (inbox/change_feed.py). Skipped while the columns do
    not exist (migrated backwards, or not yet)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if change_feed.TABLE not in connection.introspection.table_names(cursor):
            return
        columns = {
            column.name
            for column in connection.introspection.get_table_description(cursor, change_feed.TABLE)
        }
    if {"change_xid", "change_seq"} <= columns:
        change_feed.ensure(connection)
