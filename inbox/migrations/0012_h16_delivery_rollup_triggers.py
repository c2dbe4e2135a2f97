"""The triggers that keep the delivery rollup on every write to a message (PostgreSQL), and a
set-based recount of the messages already stored (inbox/rollup.py). A migration of its own: the
tables' unique indexes, which the triggers' upserts need, exist only once 0007 has committed."""

from django.db import migrations

from inbox import rollup


def install(apps, schema_editor):
    rollup.install(schema_editor.connection)
    rollup.rebuild(schema_editor.connection)


def remove(apps, schema_editor):
    rollup.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0011_h16_delivery_rollup"),
    ]

    operations = [
        migrations.RunPython(install, remove),
    ]
