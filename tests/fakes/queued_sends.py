"""Many queued outgoing messages and their send tasks, created in bulk (as a campaign would).

The campaign API (issue #15) creates these; the send-rate tests and ``bench/campaign_send.py``
need only the queue it leaves: messages ``queued`` and one send task each, at
``tasks.CAMPAIGN_PRIORITY``.
"""

from __future__ import annotations

from inbox import services as inbox_services
from inbox.models import Inbox, Message
from statuses import tasks

TEMPLATE = {"name": "order_update", "language": "en_US"}


def queue_campaign_sends(
    inbox: Inbox, count: int, *, priority: int | None = tasks.CAMPAIGN_PRIORITY
) -> list[str]:
    """Create ``count`` queued template messages in ``inbox`` and enqueue their sends."""
    contact = inbox_services.contact_get_or_create(inbox=inbox, address="+15550100000")
    conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
    messages = Message.objects.bulk_create(
        (
            Message(
                account_id=inbox.account_id,
                inbox=inbox,
                conversation=conversation,
                channel_type=inbox.channel_type,
                direction=Message.Direction.OUTGOING,
                to_address=f"+1555{2000000 + n}",
                template=TEMPLATE,
            )
            for n in range(count)
        ),
        batch_size=1000,
    )
    ids = [str(message.id) for message in messages]
    for start in range(0, count, 1000):
        tasks.send_enqueue_many([(i, 1) for i in ids[start : start + 1000]], priority=priority)
    return ids
