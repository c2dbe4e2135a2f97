"""`python manage.py worker`: run background tasks and the periodic sweeps (DESIGN §10).

Start any number of these on any number of machines against one PostgreSQL: each task is
claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` (django-tasks-db's worker), and each sweep is
run by one worker at a time (see ``statuses.sweeps``).
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections
from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS
from django_tasks_db.management.commands.db_worker import Worker

from statuses import sending, sweeps

log = logging.getLogger("statuses.worker")


class SweepThread(threading.Thread):
    """Run ``sweeps.run_all`` every ``interval`` seconds until stopped."""

    def __init__(self, interval: float):
        super().__init__(name="tickmark-sweeps", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            close_old_connections()
            try:
                changed = sweeps.run_all()
                if any(changed.values()):
                    log.info("sweeps: %s", changed)
            finally:
                connections.close_all()

    def stop(self) -> None:
        self.stopped.set()


def make_worker(*, interval: float, worker_id: str | None = None, startup_delay: bool = True):
    return Worker(
        queue_names=["*"],
        interval=interval,
        batch=False,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=startup_delay,
        max_tasks=None,
        worker_id=worker_id or get_random_string(32),
        excluded_queue_names=[],
    )


class InProcessWorker(threading.Thread):
    """The task worker in a thread of another process (``make run``'s embedded mode)."""

    def __init__(self, *, interval: float = 0.2, sweep_interval: float | None = None):
        super().__init__(name="tickmark-worker", daemon=True)
        self.worker = make_worker(interval=interval, startup_delay=False)
        sweep_interval = settings.SWEEP_INTERVAL if sweep_interval is None else sweep_interval
        self.sweeper = SweepThread(sweep_interval) if sweep_interval > 0 else None

    def run(self) -> None:
        if self.sweeper:
            self.sweeper.start()
        try:
            self.worker.run()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.worker.running = False
        if self.sweeper:
            self.sweeper.stop()


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
        parser.add_argument("--worker-id", default=None)
        parser.add_argument("--no-startup-delay", action="store_false", dest="startup_delay")

    def handle(self, *args, interval, sweep_interval, worker_id, startup_delay, **options):
        sweep_interval = settings.SWEEP_INTERVAL if sweep_interval is None else sweep_interval
        worker = make_worker(interval=interval, worker_id=worker_id, startup_delay=startup_delay)
        sending.http_client()  # build the TLS context now, not during the first send
        sweeper = SweepThread(sweep_interval) if sweep_interval > 0 else None
        if sweeper:
            sweeper.start()
        self.stdout.write(
            f"Tickmark worker {worker.worker_id}: all queues, sweeps every "
            f"{sweep_interval or '-'} s",
        )
        self.stdout.flush()
        worker.configure_signals()
        try:
            worker.run()
        finally:
            if sweeper:
                sweeper.stop()
