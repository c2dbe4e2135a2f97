"""Background tasks (django-tasks, database backend). Thin: each calls one service."""

from __future__ import annotations

from django_tasks import task


@task(queue_name="send")
def send_message(message_id: str, attempt: int) -> None:
    from statuses import sending

    sending.message_send(message_id=message_id, attempt=attempt)


@task(queue_name="webhooks")
def deliver_outgoing_webhooks() -> None:
    from statuses import webhooks_out

    webhooks_out.deliver_due()
