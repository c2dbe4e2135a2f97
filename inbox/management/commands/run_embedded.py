"""`make run`: the embedded Tickmark — SQLite, in-memory channel layer, demo data, one process."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_USER = "demo"
DEMO_PASSWORD = "tickmark-demo"  # a local demo login, printed on start; not a secret


class Command(BaseCommand):
    help = "Migrate, load demo data and serve Tickmark on http://127.0.0.1:8000"

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr: str, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        if not get_user_model().objects.filter(username=DEMO_USER).exists():
            call_command(
                "create_agent",
                account="Demo",
                username=DEMO_USER,
                password=DEMO_PASSWORD,
                admin=True,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"\nTickmark is running on http://{addr}/\n"
                f"  Log in as {DEMO_USER} / {DEMO_PASSWORD}  (admin: http://{addr}/admin/)\n"
            )
        )
        call_command("runserver", addr, use_reloader=False, insecure_serving=True)
