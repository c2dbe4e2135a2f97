"""`python manage.py worker`: run background tasks and the periodic sweeps (DESIGN §10).

Start any number of these on any number of machines against one PostgreSQL: each task is
claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` (django-tasks-db), and each sweep is run by one
worker at a time (see ``statuses.sweeps``). Sends, integrator webhooks and sweeps run in separate
lanes that survive database outages (see ``statuses.lanes``); the send lane runs
``--send-threads`` threads (default ``settings.WORKER_SEND_THREADS``: 4 on PostgreSQL).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string

from statuses import sending
from statuses.lanes import Lanes

log = logging.getLogger("statuses.worker")


class InProcessWorker(threading.Thread):
    """The task worker in a thread of another process (``make run``'s embedded mode)."""

    def __init__(self, *, interval: float = 0.2, sweep_interval: float | None = None):
        super().__init__(name="tickmark-worker", daemon=True)
        sweep_interval = settings.SWEEP_INTERVAL if sweep_interval is None else sweep_interval
        self.lanes = Lanes(
            worker_id=get_random_string(32), interval=interval, sweep_interval=sweep_interval
        )

    def run(self) -> None:
        self.lanes.start()
        self.lanes.join()

    def stop(self) -> None:
        self.lanes.stop()


class Command(BaseCommand):
    help = "Run background tasks (sends, integrator webhooks) and the periodic sweeps."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=0.5,
            help="Seconds to wait when no task is ready (default: %(default)s)",
        )
        parser.add_argument(
            "--sweep-interval",
            type=float,
            default=None,
            help="Seconds between sweeps; 0 disables them (default: settings.SWEEP_INTERVAL)",
        )
        parser.add_argument(
            "--send-threads",
            type=int,
            default=None,
            help="Threads of the send lane (default: settings.WORKER_SEND_THREADS; 0 or unset "
            "means 4 on PostgreSQL, 1 on SQLite)",
        )
        parser.add_argument("--worker-id", default=None)
        parser.add_argument(
            "--no-startup-delay",
            action="store_false",
            dest="startup_delay",
            help="Accepted for compatibility; the lanes start at once.",
        )

    def handle(
        self, *args, interval, sweep_interval, send_threads, worker_id, startup_delay, **options
    ):
        sweep_interval = settings.SWEEP_INTERVAL if sweep_interval is None else sweep_interval
        lanes = Lanes(
            worker_id=worker_id or get_random_string(32),
            interval=interval,
            sweep_interval=sweep_interval,
            send_threads=send_threads,
        )
        sending.http_client()  # build the TLS context now, not during the first send
        self.stdout.write(
            f"Tickmark worker {lanes.worker_id}: lanes send ({','.join(lanes.send.queue_names)}; "
            f"{len(lanes.sends)} threads) "
            f"and webhooks ({','.join(lanes.webhooks.queue_names)}), sweeps every "
            f"{sweep_interval or '-'} s",
        )
        self.stdout.flush()
        lanes.run_until_signalled()
