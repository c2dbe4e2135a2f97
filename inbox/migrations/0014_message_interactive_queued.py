from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0013_h15a_campaigns"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(
                    ("campaign__isnull", True), ("direction", "outgoing"), ("status", "queued")
                ),
                fields=["account", "created_at"],
                name="message_interactive_queued",
            ),
        ),
    ]
