"""`make run`: the embedded Tickmark — SQLite, in-memory channel layer, demo data, the provider
simulator and the task worker, all in one process (DESIGN §10)."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from statuses.management.commands.worker import InProcessWorker
from statuses.simulator import ProviderSimulator, Scenario

DEMO_USER = "demo"
DEMO_PASSWORD = "tickmark-demo"  # a local demo login, printed on start; not a secret


class Command(BaseCommand):
    help = "Migrate, load demo data and serve Tickmark on http://127.0.0.1:8000"

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port (or port)")

    def handle(self, *args, addr: str, **options):
        addr = addr if ":" in addr else f"127.0.0.1:{addr}"
        self._public_base_url(addr)
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
                f"\nTickmark is running on {settings.PUBLIC_BASE_URL}/\n"
                f"  Log in as {DEMO_USER} / {DEMO_PASSWORD}  "
                f"(admin: {settings.PUBLIC_BASE_URL}/admin/)\n"
                f"  Web widget demo page: {settings.PUBLIC_BASE_URL}/widget-demo/\n"
                f"  API docs: {settings.PUBLIC_BASE_URL}/api/docs/\n"
                f"  Provider simulator on {simulator.url}: send to a number ending in 0000 to "
                "see a delivery failure, 9999 for a rejection.\n"
            )
        )
        # Daphne's "HTTP/2 support not enabled" is noise for a local demo over plain HTTP.
        logging.getLogger("daphne.server").addFilter(_NoHttp2Notice())
        try:
            call_command("runserver", addr, use_reloader=False, insecure_serving=True)
        finally:
            worker.stop()
            simulator.stop()

    def _public_base_url(self, addr: str) -> None:
        """Callback URLs must point at this server, or the simulator's status webhooks go
        elsewhere and ticks stay at ✓. Derive PUBLIC_BASE_URL from the address unless it was
        set explicitly, and say so when an explicit one points at another port."""
        host, _, port = addr.rpartition(":")
        wildcard = host in ("", "::", "[::]") or host.strip("0.") == ""  # 0.0.0.0: listen on all
        public_host = "127.0.0.1" if wildcard else host
        derived = f"http://{public_host}:{port}"
        explicit = os.environ.get("PUBLIC_BASE_URL")
        if explicit:
            if urlsplit(explicit).port not in (None, int(port)):
                self.stderr.write(
                    self.style.WARNING(
                        f"PUBLIC_BASE_URL={explicit} but the server listens on {addr}: provider "
                        "callbacks will not reach it and ticks will stay at ✓."
                    )
                )
            return
        settings.PUBLIC_BASE_URL = derived
        if derived not in settings.CSRF_TRUSTED_ORIGINS:
            settings.CSRF_TRUSTED_ORIGINS = [*settings.CSRF_TRUSTED_ORIGINS, derived]
        if public_host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, public_host]


class _NoHttp2Notice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "HTTP/2 support" not in record.getMessage()
