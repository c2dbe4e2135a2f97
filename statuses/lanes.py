"""The worker's lanes: sends, integrator webhooks and sweeps, each in its own thread (DESIGN §10).

A slow integrator endpoint must never delay a provider send, so the two kinds of task never
share a lane: the *send* lane runs the ``send`` and ``default`` queues, the *webhooks* lane runs
the ``webhooks`` queue (its own fairness and timeouts are in ``statuses.webhooks_out``), and the
sweeps run on a timer in a third thread.

A send is a dozen short statements and a provider call, so one thread spends it waiting on
round trips: the send lane runs ``WORKER_SEND_THREADS`` threads (each with its own database
connection), which claim tasks as separate workers would — ``FOR UPDATE SKIP LOCKED``, highest
priority first, so never the same task and interactive sends still before campaign ones. The
inbox's send rate is shared by every thread of every worker (``statuses.sendrate``).

Every lane survives the database going away: a database error (``OperationalError``,
``InterfaceError``) is logged in one line, the broken connections are closed and the lane waits
with capped exponential backoff before trying again — it never exits on one. Our tasks are
idempotent (a send claims its message first), so a task interrupted by an outage is simply run
again once the database answers, and its result is written then.

Each lane writes a heartbeat row every ``WORKER_HEARTBEAT_EVERY`` seconds, read by
``GET /healthz/worker``; the send lane's row moves only once every one of its threads has come
round its loop since the last beat, so one stuck thread makes the lane stale.
"""

from __future__ import annotations

import json
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
from django.db import OperationalError, close_old_connections, connections, models
from django.utils import timezone
from django_tasks_db.compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    TaskResultStatus,
    task_finished,
    task_started,
)
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from statuses import sweeps
from statuses.dbretry import DB_ERRORS, Backoff, reset_connections, retry_db
from statuses.models import WorkerHeartbeat

log = logging.getLogger("statuses.worker")

LANES = ("send", "webhooks")
# A busy lane keeps its database connection from one task to the next for this many seconds.
RELEASE_EVERY = 1.0
SEND_QUEUES = ["send", "default"]
WEBHOOK_QUEUES = ["webhooks"]


class Heartbeat:
    """Upsert one ``WorkerHeartbeat`` row, at most every ``WORKER_HEARTBEAT_EVERY`` seconds.

    Shared by the ``threads`` threads of a lane: it writes only once each of them has called
    ``beat`` since the last write (a thread stuck in a task holds the lane's row back).
    """

    def __init__(self, worker_id: str, lane: str, threads: int = 1):
        self.worker_id = worker_id
        self.lane = lane
        self.threads = threads
        self.last = 0.0
        self.started_at = timezone.now()
        self.lock = threading.Lock()
        self.came_round: set[int] = set()

    def beat(self, *, force: bool = False) -> None:
        with self.lock:
            self.came_round.add(threading.get_ident())
            if len(self.came_round) < self.threads:
                return
            if not force and time.monotonic() - self.last < settings.WORKER_HEARTBEAT_EVERY:
                return
            self.came_round.clear()
            self.last = time.monotonic()
        now = timezone.now()
        try:
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
        except BaseException:
            self.last = 0.0  # not written: the next thread round writes it
            raise


class LaneWorker(Worker):
    """django-tasks-db's worker loop for some queues, made to outlive database outages."""

    def __init__(
        self,
        *,
        lane: str,
        queue_names: list[str],
        interval: float,
        worker_id: str,
        heartbeat: Heartbeat | None = None,
    ):
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
        self.heartbeat = heartbeat or Heartbeat(worker_id, lane)

    def stop(self) -> None:
        self.running = False
        self.stopping.set()

    def keep_going(self) -> bool:
        return self.running

    def run(self) -> None:
        log.info("lane %s: queues %s", self.lane, ",".join(self.queue_names))
        backoff = Backoff()
        released = time.monotonic()
        while self.running:
            try:
                # Hand the connection back (to the pool, or closed if broken or too old) when
                # idle and at least once a second: not after every task, where the next
                # checkout would cost a health-check round trip per send.
                if time.monotonic() - released >= RELEASE_EVERY:
                    close_old_connections()
                    released = time.monotonic()
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
                continue
            close_old_connections()
            released = time.monotonic()
            if self.running:
                self.stopping.wait(self.interval)
        reset_connections()

    def claim_next(self) -> DBTaskResult | None:
        tasks = DBTaskResult.objects.ready().filter(
            backend_name=self.backend_name, queue_name__in=self.queue_names
        )
        if connections[tasks.db].vendor == "postgresql":
            return self._claim_in_one_statement(tasks)
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

    def _claim_in_one_statement(self, tasks: models.QuerySet) -> DBTaskResult | None:
        """django-tasks-db's claim (lock the first ready task, skipping locked ones; mark it
        running by this worker) as one ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)
        RETURNING``: one round trip and its commit instead of four."""
        # Compiled without select_for_update(), which Django refuses outside a transaction;
        # the single statement is its own transaction.
        pick, params = tasks.values("id")[:1].query.sql_with_params()
        table = connections[tasks.db].ops.quote_name(DBTaskResult._meta.db_table)
        sql = (
            f"UPDATE {table} SET status = %s, started_at = %s, "  # noqa: S608 (ORM-built)
            f"worker_ids = worker_ids || %s::jsonb "
            f"WHERE id = ({pick} FOR UPDATE SKIP LOCKED) RETURNING *"
        )
        claim = [TaskResultStatus.RUNNING.value, timezone.now(), json.dumps([self.worker_id])]
        claimed = list(DBTaskResult.objects.using(tasks.db).raw(sql, [*claim, *params]))
        return claimed[0] if claimed else None

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


def send_threads_default() -> int:
    """``WORKER_SEND_THREADS``, else 4 on PostgreSQL and 1 on SQLite (one writer at a time)."""
    if settings.WORKER_SEND_THREADS:
        return settings.WORKER_SEND_THREADS
    return 4 if connections["default"].vendor == "postgresql" else 1


class Lanes:
    """One worker: a send lane (``send_threads`` threads), a webhooks lane and (optionally) the
    sweeps, in threads."""

    def __init__(
        self,
        *,
        worker_id: str,
        interval: float,
        sweep_interval: float,
        send_threads: int | None = None,
    ):
        self.worker_id = worker_id
        send_threads = max(1, send_threads or send_threads_default())
        send_beat = Heartbeat(worker_id, "send", threads=send_threads)
        self.sends = [
            LaneWorker(
                lane="send",
                queue_names=SEND_QUEUES,
                interval=interval,
                worker_id=worker_id,
                heartbeat=send_beat,
            )
            for _ in range(send_threads)
        ]
        self.send = self.sends[0]
        self.webhooks = LaneWorker(
            lane="webhooks", queue_names=WEBHOOK_QUEUES, interval=interval, worker_id=worker_id
        )
        self.sweeper = SweepLane(sweep_interval, worker_id) if sweep_interval > 0 else None
        self.workers = [*self.sends, self.webhooks]
        self.threads = [
            threading.Thread(target=self._guarded, args=(lane,), name=name)
            for lane, name in zip(
                self.workers,
                [f"tickmark-send-{n + 1}" for n in range(send_threads)] + ["tickmark-webhooks"],
                strict=True,
            )
        ]
        for thread in self.threads:
            thread.daemon = True
        _fit_pool(len(self.threads) + 1)  # each lane thread and the sweeps hold a connection

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
        for worker in self.workers:
            worker.stop()
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


def _fit_pool(connections_needed: int) -> None:
    """Grow the PostgreSQL connection pool to one connection per thread (``DB_POOL_MAX`` may be
    smaller): a thread waiting for a free connection would take the wait for an outage."""
    pool = getattr(connections["default"], "pool", None)
    if pool is not None and pool.max_size < connections_needed:
        log.info("connection pool: %s -> %s connections", pool.max_size, connections_needed)
        pool.resize(min(pool.min_size, connections_needed), connections_needed)
