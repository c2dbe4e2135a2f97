"""Background tasks (django-tasks, database backend), and every enqueue of them.

Nothing else enqueues: a new outgoing message, a resend and a send's retry (inside its
recording transaction) go through ``send_enqueue``, the sweeps' re-enqueue of lost sends
through ``send_enqueue_many`` (one statement); the status outbox and the delivery task itself
through ``webhook_delivery_enqueue``.

The task bodies are the worker's entry points into the app and import their targets when they
run. That is the one place the write path imports upwards, and it cannot be otherwise: the
targets enqueue through this module (a send schedules its own retry in the transaction that
records the try; the outbox schedules delivery in the status transaction), so a top-level
import would be a cycle. The import contract (``pyproject.toml``) names exactly these two.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.utils import timezone
from django_tasks import task
from django_tasks.base import TASK_MIN_PRIORITY
from django_tasks_db.models import DBTaskResult, get_date_max

# Campaign sends run after every interactive send: the send lane takes tasks by priority
# (highest first, django-tasks-db's ordering), and interactive sends stay above this
# (``sending.send_priority`` ranks them from 0 down to CAMPAIGN_PRIORITY + 1 for fairness).
CAMPAIGN_PRIORITY = TASK_MIN_PRIORITY


@task(queue_name="send")
def send_message(message_id: str, attempt: int, bulk: bool = False) -> None:
    # Run-time import: sending enqueues its retries through this module (see the docstring).
    from statuses import sending

    sending.message_send(message_id=message_id, attempt=attempt, bulk=bulk)


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
    message_id: uuid.UUID | str, attempt: int, *, delay: float = 0, priority: int | None = None
) -> None:
    """Enqueue one attempt's send, after ``delay`` seconds, at ``priority`` (if given).

    At ``CAMPAIGN_PRIORITY`` the send is a campaign ("bulk") send: the rate limiter keeps a
    reserve of the inbox's pace from it for interactive sends (``statuses.sendrate``).
    """
    options: dict = {}
    if delay > 0:
        options["run_after"] = timezone.now() + timedelta(seconds=delay)
    if priority is not None:
        options["priority"] = priority
    send_task = send_message.using(**options) if options else send_message
    if is_bulk(priority):
        send_task.enqueue(str(message_id), attempt, bulk=True)
    else:
        send_task.enqueue(str(message_id), attempt)


def send_enqueue_many(sends: list[tuple[str, int]], *, priority: int | None = None) -> None:
    """Enqueue many sends (message id, attempt) in one statement, at ``priority`` if given."""
    kwargs = {"bulk": True} if is_bulk(priority) else {}
    DBTaskResult.objects.bulk_create(
        DBTaskResult(
            id=uuid.uuid4(),
            args_kwargs={"args": [message_id, attempt], "kwargs": kwargs},
            priority=send_message.priority if priority is None else priority,
            task_path=send_message.module_path,
            queue_name=send_message.queue_name,
            run_after=get_date_max(),  # django-tasks-db's "no run_after"
            backend_name=send_message.backend,
        )
        for message_id, attempt in sends
    )


def is_bulk(priority: int | None) -> bool:
    """Whether a send at ``priority`` is a campaign send (see ``CAMPAIGN_PRIORITY``)."""
    return priority is not None and priority <= CAMPAIGN_PRIORITY


def bulk_priority(bulk: bool) -> int | None:
    """The priority to enqueue a send again at (a retry, a deferred turn): bulk stays bulk."""
    return CAMPAIGN_PRIORITY if bulk else None


def webhook_delivery_enqueue(*, run_after: datetime | None = None) -> None:
    """Enqueue a delivery run of the integrator outbox (now, or at ``run_after``)."""
    deliver = deliver_outgoing_webhooks
    if run_after is not None:
        deliver = deliver.using(run_after=max(run_after, timezone.now()))
    deliver.enqueue()
