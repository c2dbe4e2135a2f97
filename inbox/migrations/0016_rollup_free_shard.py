"""The rollup's trigger functions again, each writing a shard no concurrent transaction is
writing when there is one (``inbox.rollup._shard_function``): a status update no longer waits
for an unrelated transaction that happens to share its backend's shard. Counts are unchanged
(a shard is only where a count is added), so nothing is recounted."""

from django.db import migrations

from inbox import rollup


def install(apps, schema_editor):
    rollup.install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0015_wb_rollup_float_bins"),
    ]

    operations = [
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
