"""Cost of the ``queued_requeue`` sweep while a large campaign waits in the send queue.

    python bench/requeue_sweep.py [--messages 100000] [--finished 100000] [--runs 5]

Recreates ``BENCH_DATABASE_URL`` (default ``tickmark_bench_requeue``), creates one running
campaign of ``--messages`` messages through the real create and materialise code (each with its
READY send task), makes them old enough to be requeue candidates, adds ``--finished`` SUCCESSFUL
send tasks (the history a busy worker leaves behind), loses the tasks of 10 messages, and times
the sweep: with the partial index on the waiting send tasks (migration ``statuses.0010``), then
without it; and, for comparison, the statement the sweep used to run (every waiting send task's
``args_kwargs`` read into Python). Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_setup, recreate_database  # noqa: E402

DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickmark_bench_requeue"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LOST = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    recreate_database(DB_URL)
    django_setup(DB_URL, REDIS_URL)
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from inbox.models import Account, Inbox, Message
    from statuses import sweeps, tasks
    from statuses.campaigns import create, materialise
    from statuses.campaigns.recipients import Recipient

    call_command("migrate", verbosity=0)
    account = Account.objects.create(name="Bench")
    inbox = Inbox.objects.create(
        account=account,
        name="WhatsApp",
        channel_type="whatsapp_cloud",
        config={"phone_number_id": "1", "access_token": "t", "app_secret": "s"},
    )
    recipients = [Recipient(i, f"+1{i:010d}", [f"Name {i}"]) for i in range(args.messages)]
    campaign, _ = create.campaign_create(
        account=account,
        inbox=inbox,
        name="waiting",
        recipients=recipients,
        template={"name": "order_shipped", "language": {"code": "en_US"}},
    )
    while materialise.batch_materialise(campaign.id) == "batch":
        pass
    Message.objects.filter(campaign=campaign).update(queued_at=timezone.now() - timedelta(hours=1))
    table = DBTaskResult._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, status, args_kwargs, priority, task_path, queue_name, "
            "backend_name, run_after, enqueued_at, finished_at, exception_class_path, traceback, "
            "worker_ids) SELECT gen_random_uuid(), 'SUCCESSFUL', jsonb_build_object('args', "
            "jsonb_build_array(gen_random_uuid()::text, 1), 'kwargs', '{}'::jsonb), 0, %s, 'send', "
            "'default', now(), now(), now(), '', '', '[]'::jsonb FROM generate_series(1, %s)",
            [tasks.send_message.module_path, args.finished],
        )
    lost = list(Message.objects.filter(campaign=campaign).values_list("id", flat=True)[:LOST])
    waiting = DBTaskResult.objects.filter(task_path=tasks.send_message.module_path, status="READY")

    def lose() -> None:
        for mid in lost:
            waiting.filter(args_kwargs__args=[str(mid), 1]).delete()

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    def timed(label: str, sweep) -> None:
        times, statements, found = [], 0, 0
        for _ in range(args.runs):
            with transaction.atomic():
                lose()
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                found = sweep()
            times.append(time.perf_counter() - started)
            statements = len(queries)
        row = {
            "variant": label,
            "waiting_tasks": waiting.count(),
            "finished_tasks": args.finished,
            "found": found,
            "median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1),
            "statements": statements,
        }
        print(json.dumps(row), flush=True)

    timed("sweep, indexed", sweeps.queued_requeue)
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX tasks_send_message_waiting")
        cursor.execute("ANALYZE")
    timed("sweep, no index", sweeps.queued_requeue)

    def old_pending_read() -> int:
        # The statement the sweep ran before: every waiting send task's arguments, in Python.
        return len(
            {
                (str(a["args"][0]), int(a["args"][1]))
                for a in DBTaskResult.objects.filter(
                    task_path=tasks.send_message.module_path, status__in=["READY", "RUNNING"]
                ).values_list("args_kwargs", flat=True)
            }
        )

    timed("old: read the waiting tasks into Python", old_pending_read)


if __name__ == "__main__":
    main()
