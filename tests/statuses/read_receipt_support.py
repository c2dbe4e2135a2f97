"""Helpers for the read receipt tests: inbound messages, inboxes on a fake provider, the
enqueued receipt tasks and django-tasks-db's real worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from inbox import services as inbox_services
from inbox.models import Message
from statuses import tasks
from statuses.providers.base import InboundMessage

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
WA_CONTACT = "+16505076520"
PSID = "6754321098765432"

# Each channel's credentials, as the inbox's config holds them (pointed at a fake by the test).
CONFIGS = {
    "whatsapp_cloud": {
        "phone_number_id": "106540352242922",
        "access_token": "wa-access-token",
        "app_secret": "wa-app-secret",
        "verify_token": "wa-verify",
    },
    "whatsapp_360dialog": {"api_key": "d360-key", "webhook_token": "d360-hook"},
    "facebook": {
        "page_id": "1122334455",
        "page_access_token": "page-token",
        "app_secret": "fb-app-secret",
        "verify_token": "fb-verify",
    },
    "instagram": {
        "ig_user_id": "17841400000000",
        "access_token": "ig-token",
        "app_secret": "ig-app-secret",
        "verify_token": "ig-verify",
    },
}
CONTACTS = {
    "whatsapp_cloud": WA_CONTACT,
    "whatsapp_360dialog": WA_CONTACT,
    "facebook": PSID,
    "instagram": "17841455555555",
}


def make_receipt_inbox(account, channel_type: str, base_url: str, **fields):
    from inbox.models import Inbox

    return Inbox.objects.create(
        account=account,
        name=f"{channel_type} receipts",
        channel_type=channel_type,
        config={**CONFIGS[channel_type], "api_base_url": base_url},
        **fields,
    )


def receive(inbox, count: int, *, start: int = 0, address: str | None = None) -> list[Message]:
    """Store ``count`` inbound messages from the inbox's contact, one minute apart."""
    address = address or CONTACTS[inbox.channel_type]
    return inbox_services.inbound_messages_store(
        inbox=inbox,
        inbound=[
            InboundMessage(
                contact_address=address,
                provider_message_id=f"in.{inbox.channel_type}.{i}",
                content=f"message {i}",
                occurred_at=T0 + timedelta(minutes=i),
            )
            for i in range(start, start + count)
        ],
    )


def receipt_tasks():
    return DBTaskResult.objects.filter(task_path=tasks.send_read_receipt.module_path)


def run_worker(worker_id: str = "receipts-test") -> None:
    """Run every ready task with django-tasks-db's real worker, then return."""
    Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    ).run()
