"""The rollup's trigger functions again, with the histogram bin found in double precision
(``inbox.rollup.bin_sql``): the same bins as before (a duration near a bin edge still takes the
exact path), so the rollup stays as it is and needs no recount."""

from django.db import migrations

from inbox import rollup


def install(apps, schema_editor):
    rollup.install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0014_message_interactive_queued"),
    ]

    operations = [
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
