"""A partial expression index on the waiting and running send tasks' message id.

``sweeps.queued_requeue`` looks for queued messages without such a task (``NOT EXISTS``); with
this index each message costs one index probe, however many tasks — finished ones included —
the table holds. PostgreSQL only: the embedded SQLite mode is small.
"""

from django.db import migrations

INDEX = "tasks_send_message_waiting"
TABLE = "django_tasks_database_dbtaskresult"


def index_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} (((args_kwargs -> 'args') ->> 0)) "
        "WHERE task_path = 'statuses.tasks.send_message' AND status IN ('READY', 'RUNNING')"
    )


def index_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
        ("statuses", "0009_h15b_send_rate_bucket"),
    ]

    operations = [migrations.RunPython(index_create, index_drop)]
