"""Outgoing messages enter the delivery pipeline here: create (queued, send enqueued, published
in one transaction) and resend (a new attempt).

The agent pages and the REST API call these. They live on the statuses side because they start
a status's life and need the queue and the publisher; the inbox services below them (contacts,
conversations) never call back up, so the imports run one way (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox import consent, rowsql
from inbox.exceptions import (
    CampaignStateConflict,
    NotResendable,
    OutsideServiceWindow,
    ResendWillNotHelp,
)
from inbox.models import Account, Campaign, Conversation, Inbox, Message
from statuses import errors, outbound_rows, publish, sending, services, tasks, templates
from statuses.machine import Status


def message_create_outgoing(
    *,
    account: Account,
    inbox: Inbox,
    to: str,
    content: str = "",
    template: dict[str, Any] | None = None,
    customer_message_id: str | None = None,
    sender=None,
    conversation: Conversation | None = None,
) -> tuple[Message, bool]:
    """Create a queued outgoing message and enqueue its send in the same transaction.

    Returns (message, created). A repeated ``customer_message_id`` returns the existing
    message. Free-form messages on channels with a 24-hour customer-service window are refused
    up front when the window is closed (instead of failing later with WhatsApp's 131047).

    A brand-new message costs one statement between BEGIN and COMMIT on PostgreSQL
    (``statuses.outbound_rows.message_store``; asserted in ``tests/api/test_query_counts.py``):
    the repeat check, the contact and conversation upserts, the message, its task row with its
    fairness priority, and whether an integrator is subscribed. The checks that need the
    contact and the conversation (consent, the service window) run after it: a refusal raises
    inside the transaction, which takes everything back, so a refused message leaves nothing.
    Four statements sent one after another cost a create more CPU than the round trips
    themselves (each wait hands the GIL to daphne's other threads: bench/README.md).
    """
    customer_message_id = customer_message_id or None
    # The template check runs first: it needs no row, and a refusal creates nothing.
    template, template_ref = templates.template_prepare(inbox=inbox, template=template)
    try:
        with transaction.atomic():
            now = timezone.now()
            message = Message(
                account=account,
                inbox=inbox,
                conversation=conversation,
                channel_type=inbox.channel_type,
                direction=Message.Direction.OUTGOING,
                to_address=conversation.contact.address if conversation else to,
                content=content,
                template=template,
                template_ref=template_ref,
                customer_message_id=customer_message_id,
                sender=sender,
                status=Status.QUEUED,
                queued_at=now,
                status_updated_at=now,
                created_at=now,
                updated_at=now,
            )
            # Fair between accounts: the task's priority counts the account's queued sends.
            priority = sending.send_priority_sql(account.id, message.id)
            task, task_expressions = tasks.send_row(message.id, message.attempt, priority=priority)
            if conversation is None:
                existing_id, conversation, subscribed = outbound_rows.message_store(
                    inbox=inbox,
                    address=to,
                    customer_message_id=customer_message_id,
                    now=now,
                    message=message,
                    task=task,
                    task_expressions=task_expressions,
                )
                if existing_id is not None:
                    return Message.objects.get(id=existing_id), False
            else:
                existing = _existing(account, customer_message_id)
                if existing is not None:
                    return existing, False
                Conversation.objects.filter(id=conversation.id).update(last_message_at=now)
                rowsql.insert(message)
                rowsql.insert(task, expressions=task_expressions)
                subscribed = True

            # --- checks of the contact and conversation: each raises an InboxError
            # (inbox/exceptions.py) to refuse, and the transaction takes the rows back ---
            consent.contact_check_sendable(
                contact=conversation.contact, template=template, known=template_ref
            )
            needs_window = inbox.channel.has_service_window and template is None
            if needs_window and not conversation.service_window_open():
                raise OutsideServiceWindow()
            # --- end of checks ---

            publish.message_created(message, notify_integrators=subscribed)
    except IntegrityError:
        # Two concurrent calls with the same customer_message_id: the loser returns the winner.
        existing = _existing(account, customer_message_id)
        if existing is not None:
            return existing, False
        raise
    return message, True


def _existing(account: Account, customer_message_id: str | None) -> Message | None:
    if not customer_message_id:
        return None
    return Message.objects.filter(account=account, customer_message_id=customer_message_id).first()


def message_resend(*, message: Message) -> Message:
    """Send a failed or expired message again as a new attempt (DESIGN §3.3)."""
    if message.direction != Message.Direction.OUTGOING or message.status not in (
        Status.FAILED,
        Status.EXPIRED,
    ):
        raise NotResendable(message.status)
    if message.campaign_id and message.campaign.status == Campaign.State.CANCELLED:
        raise CampaignStateConflict("resent", Campaign.State.CANCELLED)
    consent.contact_check_sendable(
        contact=message.conversation.contact, template=message.template, known=message.template_ref
    )
    if not errors.resend_helps(message.channel_type, message.error_code, when_unknown=True):
        info = errors.error_info(message.channel_type, message.error_code)
        raise ResendWillNotHelp(message.error_code, info.hint if info else "")
    with transaction.atomic():
        message = services.message_start_attempt(message=message)
        if message.status != Status.QUEUED:
            raise NotResendable(message.status)
        tasks.send_enqueue(message.id, message.attempt)
    return message
