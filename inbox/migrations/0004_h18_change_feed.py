"""The change feed's position on every message, stamped by triggers (inbox/change_feed.py,
docs/change-feed.md). Existing rows are numbered in their former feed order."""

from django.db import migrations, models

from inbox import change_feed


def install(apps, schema_editor):
    change_feed.backfill(schema_editor.connection)
    change_feed.install(schema_editor.connection)
    change_feed.start_sequence(schema_editor.connection)


def remove(apps, schema_editor):
    change_feed.remove(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ('inbox', '0003_h10c_contact_never_wrote'),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="change_seq",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.AddField(
            model_name="message",
            name="change_xid",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.RunPython(install, remove),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                fields=["account", "change_xid", "change_seq"], name="message_account_change"
            ),
        ),
    ]
