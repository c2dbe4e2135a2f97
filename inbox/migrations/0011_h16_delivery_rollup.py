"""The delivery rollup's tables (inbox/rollup.py); 0008 installs the triggers that fill them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0010_h15b_max_send_rate"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeliveryDuration",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("account_id", models.BigIntegerField()),
                ("daily", models.BooleanField()),
                ("bucket", models.DateTimeField()),
                ("inbox_id", models.UUIDField()),
                ("channel_type", models.CharField(max_length=32)),
                ("template_name", models.TextField(blank=True)),
                ("measure", models.SmallIntegerField()),
                ("bin", models.SmallIntegerField()),
                ("n", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=(
                            "account_id",
                            "daily",
                            "bucket",
                            "inbox_id",
                            "channel_type",
                            "template_name",
                            "measure",
                            "bin",
                        ),
                        name="delivery_duration_key",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="DeliveryHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("account_id", models.BigIntegerField()),
                ("daily", models.BooleanField()),
                ("bucket", models.DateTimeField()),
                ("inbox_id", models.UUIDField()),
                ("channel_type", models.CharField(max_length=32)),
                ("template_name", models.TextField(blank=True)),
                ("status", models.CharField(max_length=10)),
                ("error_code", models.CharField(blank=True, max_length=100)),
                ("shard", models.SmallIntegerField(default=0)),
                ("n", models.BigIntegerField(default=0)),
                ("n_delivered_at", models.BigIntegerField(default=0)),
                ("n_read_at", models.BigIntegerField(default=0)),
                ("error_title", models.CharField(blank=True, max_length=500)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=(
                            "account_id",
                            "daily",
                            "bucket",
                            "inbox_id",
                            "channel_type",
                            "template_name",
                            "status",
                            "error_code",
                            "shard",
                        ),
                        name="delivery_hour_key",
                    )
                ],
            },
        ),
    ]
