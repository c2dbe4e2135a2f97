"""`make run`: the embedded Tickmark — SQLite, in-memory channel layer, demo data, the provider
simulator and the task worker, all in one process (DESIGN §10)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
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
        from statuses.management.commands.worker import InProcessWorker
        from statuses.simulator import ProviderSimulator, Scenario

        # The simulator listens on 127.0.0.1: the embedded mode talks to a private address.
        settings.TICKMARK_ALLOW_PRIVATE_URLS = True
        call_command("migrate", interactive=False, verbosity=0)
        simulator_url = urlsplit(settings.SIMULATOR_URL)
        simulator = ProviderSimulator(
            simulator_url.hostname or "127.0.0.1", simulator_url.port or 8025, scenario=Scenario()
        ).start()
        call_command("seed_demo", simulator_url=simulator.url)
        if not get_user_model().objects.filter(username=DEMO_USER).exists():
            call_command(
                "create_agent",
                account="Demo",
                username=DEMO_USER,
                password=DEMO_PASSWORD,
                admin=True,
            )
        worker = InProcessWorker(interval=0.2)
        worker.start()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nTickmark is running on http://{addr}/\n"
                f"  Log in as {DEMO_USER} / {DEMO_PASSWORD}  (admin: http://{addr}/admin/)\n"
                f"  Provider simulator on {simulator.url}: send to a number ending in 0000 to "
                "see a delivery failure, 9999 for a rejection.\n"
            )
        )
        try:
            call_command("runserver", addr, use_reloader=False, insecure_serving=True)
        finally:
            worker.stop()
            simulator.stop()
