"""The worker's lanes: sends, integrator webhooks and sweeps, each in its own thread (DESIGN §10).

A slow integrator endpoint must never delay a provider send, so the two kinds of task never
share a lane: the *send* lane runs the ``send`` and ``default`` queues, the *webhooks* lane runs
the ``webhooks`` queue (its own fairness and timeouts are in ``statuses.webhooks_out``), and the
sweeps run on a timer in a third thread.

Every lane survives the database going away: a database error (``OperationalError``,
``InterfaceError``) is logged in one line, the broken connections are closed and the lane waits
with capped exponential backoff before trying again — it never exits on one. Our tasks are
idempotent (a send claims its message first), so a task interrupted by an outage is simply run
again once the database answers, and its result is written then.

Each lane writes a heartbeat row every ``WORKER_HEARTBEAT_EVERY`` seconds, read by
``GET /healthz/worker``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

from django.conf import settings
from django.db import OperationalError, close_old_connections
from django.utils import timezone
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS, task_finished, task_started
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from statuses import sweeps
from statuses.dbretry import DB_ERRORS, Backoff, reset_connections, retry_db
from statuses.models import WorkerHeartbeat

log = logging.getLogger("statuses.worker")

LANES = ("send", "webhooks")
SEND_QUEUES = ["send", "default"]
WEBHOOK_QUEUES = ["webhooks"]


class Heartbeat:
    """Upsert one ``WorkerHeartbeat`` row, at most every ``WORKER_HEARTBEAT_EVERY`` seconds."""

    def __init__(self, worker_id: str, lane: str):
        self.worker_id = worker_id
        self.lane = lane
        self.last = 0.0
        self.started_at = timezone.now()

    def beat(self, *, force: bool = False) -> None:

        if not force and time.monotonic() - self.last < settings.WORKER_HEARTBEAT_EVERY:
            return
        now = timezone.now()
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            lane=self.lane,
            defaults={"seen_at": now},
            create_defaults={
                "seen_at": now,
                "started_at": self.started_at,
                "host": socket.gethostname()[:255],
                "pid": os.getpid(),
            },
        )
        # Forget workers that have been gone for a day (stopped, scaled down, crashed).
        WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
        self.last = time.monotonic()


class LaneWorker(Worker):
    """django-tasks-db's worker loop for some queues, made to outlive database outages."""

    def __init__(self, *, lane: str, queue_names: list[str], interval: float, worker_id: str):
        super().__init__(
            queue_names=queue_names,
            interval=interval,
            batch=False,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )
        self.lane = lane
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat(worker_id, lane)

    def stop(self) -> None:
        self.running = False
        self.stopping.set()

    def keep_going(self) -> bool:
        return self.running

    def run(self) -> None:
        log.info("lane %s: queues %s", self.lane, ",".join(self.queue_names))
        backoff = Backoff()
        while self.running:
            try:
                close_old_connections()
                self.heartbeat.beat()
                task_result = self.claim_next()
                backoff.reset()
            except DB_ERRORS as exc:
                delay = backoff.next()
                log.warning(
                    "lane %s: database unavailable (%s); retrying in %.1f s",
                    self.lane,
                    type(exc).__name__,
                    delay,
                )
                reset_connections()
                self.stopping.wait(delay)
                continue
            if task_result is not None:
                self.run_task(task_result)
            close_old_connections()
            if self.running and task_result is None:
                self.stopping.wait(self.interval)
        reset_connections()

    def claim_next(self) -> DBTaskResult | None:
        tasks = DBTaskResult.objects.ready().filter(
            backend_name=self.backend_name, queue_name__in=self.queue_names
        )
        with exclusive_transaction(tasks.db):
            try:
                task_result = tasks.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)  # so no other worker runs it
            except OperationalError as exc:
                if is_locked_database_exception(exc):  # SQLite busy: try again next loop
                    return None
                raise
        return task_result

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """Run a claimed task; a database outage while it runs means "run it again later"."""
        self.running_task = True
        try:
            task = db_task_result.task
            task_result = db_task_result.task_result
            backend_type = type(task.get_backend())
            task_started.send(sender=backend_type, task_result=task_result)
            try:
                value = retry_db(
                    lambda: task.call(*task_result.args, **task_result.kwargs),
                    what=f"task {db_task_result.id} ({task.name})",
                    keep_going=self.keep_going,
                    sleep=self.stopping.wait,
                )
            except DB_ERRORS:
                # Stopping mid-outage: leave the task RUNNING; the sweeps close it and the
                # queued message is enqueued again (statuses.sweeps.queued_requeue).
                return
            except Exception as exc:
                failure = exc
                self._finish(lambda: db_task_result.set_failed(failure))
            else:
                self._finish(lambda: db_task_result.set_successful(value))
            task_finished.send(sender=backend_type, task_result=db_task_result.task_result)
        finally:
            self.running_task = False
            self._run_tasks += 1

    def _finish(self, write: Callable[[], None]) -> None:
        try:
            retry_db(
                write, what="task result", keep_going=self.keep_going, sleep=self.stopping.wait
            )
        except DB_ERRORS:
            log.warning("lane %s: stopping before a task result could be written", self.lane)


class SweepLane(threading.Thread):
    """Run ``sweeps.run_all`` every ``interval`` seconds until stopped."""

    def __init__(self, interval: float, worker_id: str = ""):
        super().__init__(name="tickmark-sweeps", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()
        self.heartbeat = Heartbeat(worker_id, "sweeps") if worker_id else None

    def run(self) -> None:

        backoff = Backoff()
        wait = self.interval
        while not self.stopped.wait(wait):
            wait = self.interval
            try:
                close_old_connections()
                if self.heartbeat:
                    self.heartbeat.beat(force=True)
                changed = sweeps.run_all()
                if any(changed.values()):
                    log.info("sweeps: %s", changed)
                backoff.reset()
            except DB_ERRORS as exc:
                wait = min(backoff.next(), self.interval)
                log.warning("sweeps: database unavailable (%s)", type(exc).__name__)
            except Exception:
                log.exception("sweeps failed")
            finally:
                reset_connections()

    def stop(self) -> None:
        self.stopped.set()


class Lanes:
    """One worker: a send lane, a webhooks lane and (optionally) the sweeps, in threads."""

    def __init__(self, *, worker_id: str, interval: float, sweep_interval: float):
        self.worker_id = worker_id
        self.send = LaneWorker(
            lane="send", queue_names=SEND_QUEUES, interval=interval, worker_id=worker_id
        )
        self.webhooks = LaneWorker(
            lane="webhooks", queue_names=WEBHOOK_QUEUES, interval=interval, worker_id=worker_id
        )
        self.sweeper = SweepLane(sweep_interval, worker_id) if sweep_interval > 0 else None
        self.threads = [
            threading.Thread(target=self._guarded, args=(lane,), name=f"tickmark-{lane.lane}")
            for lane in (self.send, self.webhooks)
        ]
        for thread in self.threads:
            thread.daemon = True

    def _guarded(self, lane: LaneWorker) -> None:
        # A bug in a lane must not silently stop it: log and start the loop again.
        while lane.running:
            try:
                lane.run()
            except Exception:
                log.exception("lane %s crashed; restarting it", lane.lane)
                reset_connections()
                lane.stopping.wait(1.0)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        if self.sweeper:
            self.sweeper.start()

    def stop(self) -> None:
        self.send.stop()
        self.webhooks.stop()
        if self.sweeper:
            self.sweeper.stop()

    def join(self, timeout: float | None = None) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def run_until_signalled(self) -> None:
        """Start, then wait for SIGTERM/SIGINT: finish the tasks in hand and stop (twice: now)."""

        def shutdown(signum: int, frame: FrameType | None) -> None:
            if not self.send.running:
                log.warning("%s again: exiting now", signal.strsignal(signum))
                os._exit(1)
            log.warning("%s: finishing the tasks in hand", signal.strsignal(signum))
            self.stop()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, shutdown)
        self.start()
        while self.alive():
            self.join(timeout=0.5)
