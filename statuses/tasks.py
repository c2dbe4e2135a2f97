"""Background tasks (django-tasks, database backend), and every enqueue of them.

Nothing else enqueues: a new outgoing message, a resend and a send's retry (inside its
recording transaction) go through ``send_enqueue``, the sweeps' re-enqueue of lost sends and
a campaign's sends through ``send_enqueue_many`` (one statement), a campaign's materialising
through ``campaign_materialise_enqueue``; the status outbox and the delivery task itself
through ``webhook_delivery_enqueue``; an owed read receipt and its retries through
``read_receipt_enqueue``.

The task bodies are the worker's entry points into the app and import their targets when they
run. That is the one place the write path imports upwards, and it cannot be otherwise: the
targets enqueue through this module (a send schedules its own retry in the transaction that
records the try; the outbox schedules delivery in the status transaction; a campaign batch
enqueues its sends), so a top-level import would be a cycle. The import contract
(``pyproject.toml``) names exactly these four.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone
from django_tasks import task
from django_tasks.base import TASK_MIN_PRIORITY
from django_tasks_db.models import DBTaskResult, get_date_max

from inbox import rowsql

# Campaign sends run after every interactive send: the send lane takes tasks by priority
# (highest first, django-tasks-db's ordering), and interactive sends stay above this
# (``sending.send_priority_sql`` ranks them from 0 down to CAMPAIGN_PRIORITY + 1 for fairness).
CAMPAIGN_PRIORITY = TASK_MIN_PRIORITY


@task(queue_name="send")
def send_message(message_id: str, attempt: int, bulk: bool = False) -> None:
    # Run-time import: sending enqueues its retries through this module (see the docstring).
    from statuses import sending

    sending.message_send(message_id=message_id, attempt=attempt, bulk=bulk)


@task(queue_name="send")
def send_read_receipt(receipt_id: int) -> None:
    # Run-time import: a receipt's retry is enqueued through this module.
    from statuses import read_receipts

    read_receipts.read_receipt_send(receipt_id=receipt_id)


@task(queue_name="default")
def materialise_campaign(campaign_id: str) -> None:
    # Run-time import: materialising enqueues the sends (and its own next run) through here.
    from statuses.campaigns import materialise

    materialise.campaign_materialise(campaign_id=campaign_id)


@task(queue_name="webhooks")
def deliver_outgoing_webhooks() -> None:
    # Run-time import: the outbox below webhooks_out enqueues through this module.
    from statuses import webhooks_out

    webhooks_out.deliver_due()
    # Come back for the next due event (a backoff or a lease running out), if any.
    next_due = webhooks_out.next_due()
    if next_due is not None:
        webhook_delivery_enqueue(run_after=next_due)


def send_enqueue(
    message_id: uuid.UUID | str,
    attempt: int,
    *,
    delay: float = 0,
    priority: int | rowsql.Expression | None = None,
) -> None:
    """Enqueue one attempt's send, after ``delay`` seconds, at ``priority`` (if given).

    One ``INSERT`` of the task row, written like ``send_enqueue_many`` writes its rows (the
    backend's ``enqueue`` builds its statement through the ORM on every call, which the message
    create path cannot afford). ``priority`` may be SQL computed in that same statement
    (``sending.send_priority_sql``). At ``CAMPAIGN_PRIORITY`` the send is a campaign ("bulk")
    send: the rate limiter keeps a reserve of the inbox's pace from it for interactive sends
    (``statuses.sendrate``).
    """
    row, expressions = send_row(message_id, attempt, delay=delay, priority=priority)
    rowsql.insert(row, expressions=expressions)


def send_row(
    message_id: uuid.UUID | str,
    attempt: int,
    *,
    delay: float = 0,
    priority: int | rowsql.Expression | None = None,
) -> tuple[DBTaskResult, dict[str, rowsql.Expression]]:
    """The task row of one attempt's send, and the SQL of its computed columns: what
    ``send_enqueue`` inserts, and what a new message's one statement inserts with the message
    (``statuses.outbound_rows``)."""
    run_after = timezone.now() + timedelta(seconds=delay) if delay > 0 else get_date_max()
    bulk = isinstance(priority, int) and is_bulk(priority)
    row = DBTaskResult(
        id=uuid.uuid4(),
        args_kwargs={"args": [str(message_id), attempt], "kwargs": {"bulk": True} if bulk else {}},
        priority=send_message.priority,
        task_path=send_message.module_path,
        queue_name=send_message.queue_name,
        run_after=run_after,
        backend_name=send_message.backend,
    )
    expressions = {}
    if isinstance(priority, int):
        row.priority = priority
    elif priority is not None:
        expressions["priority"] = priority
    return row, expressions


def send_enqueue_many(sends: list[tuple[str, int]], *, priority: int | None = None) -> None:
    """Enqueue many sends (message id, attempt) in one statement (the sweeps' re-enqueue, a
    campaign's batch at ``CAMPAIGN_PRIORITY``, whose tasks carry ``bulk``)."""
    if not sends:
        return
    kwargs = {"bulk": True} if is_bulk(priority) else {}
    priority = send_message.priority if priority is None else priority
    if connection.vendor == "postgresql":
        _send_rows_insert(sends, priority, kwargs)
        return
    DBTaskResult.objects.bulk_create(
        DBTaskResult(
            id=uuid.uuid4(),
            args_kwargs={"args": [message_id, attempt], "kwargs": kwargs},
            priority=priority,
            task_path=send_message.module_path,
            queue_name=send_message.queue_name,
            run_after=get_date_max(),  # django-tasks-db's "no run_after"
            backend_name=send_message.backend,
        )
        for message_id, attempt in sends
    )


def read_receipt_enqueue(receipt_id: int, *, delay: float = 0) -> None:
    """Enqueue the provider call of one owed read receipt (now, or after ``delay`` seconds).

    On the send lane: a receipt is a provider call like a send, short, and never worth a lane
    of its own.
    """
    receipt_task = send_read_receipt
    if delay > 0:
        receipt_task = receipt_task.using(run_after=timezone.now() + timedelta(seconds=delay))
    receipt_task.enqueue(receipt_id)


def is_bulk(priority: int | None) -> bool:
    """Whether a send at ``priority`` is a campaign send (see ``CAMPAIGN_PRIORITY``)."""
    return priority is not None and priority <= CAMPAIGN_PRIORITY


def bulk_priority(bulk: bool) -> int | None:
    """The priority to enqueue a send again at (a retry, a deferred turn): bulk stays bulk."""
    return CAMPAIGN_PRIORITY if bulk else None


def _send_rows_insert(sends: list[tuple[str, int]], priority: int, kwargs: dict) -> None:
    """The PostgreSQL form: the same rows in one ``INSERT … SELECT`` from one JSON document (a
    campaign batch's thousand sends cost one short statement, not a thousand composed rows)."""
    table = DBTaskResult._meta.db_table
    sql = (
        f"INSERT INTO {table} (id, status, args_kwargs, priority, task_path, queue_name, "  # noqa: S608
        "backend_name, run_after, enqueued_at, exception_class_path, traceback, worker_ids) "
        "SELECT gen_random_uuid(), 'READY', jsonb_build_object('args', "
        "jsonb_build_array(u.message_id, u.attempt), 'kwargs', %s::jsonb), %s, %s, %s, %s, "
        "%s, %s, '', '', '[]'::jsonb "
        "FROM jsonb_to_recordset(%s::jsonb) AS u(message_id text, attempt integer)"
    )
    params = [
        json.dumps(kwargs),
        priority,
        send_message.module_path,
        send_message.queue_name,
        send_message.backend,
        get_date_max(),
        timezone.now(),
        json.dumps([{"message_id": str(mid), "attempt": attempt} for mid, attempt in sends]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def campaign_materialise_enqueue(
    campaign_id: uuid.UUID, *, run_after: datetime | None = None
) -> None:
    """Enqueue the materialising of a campaign's next batches (now, or at ``run_after``)."""
    materialise = materialise_campaign
    if run_after is not None and run_after > timezone.now():
        materialise = materialise.using(run_after=run_after)
    materialise.enqueue(str(campaign_id))


def webhook_delivery_enqueue(*, run_after: datetime | None = None) -> None:
    """Enqueue a delivery run of the integrator outbox (now, or at ``run_after``)."""
    deliver = deliver_outgoing_webhooks
    if run_after is not None:
        deliver = deliver.using(run_after=max(run_after, timezone.now()))
    deliver.enqueue()
