"""Turn a campaign's stored recipients into queued messages and send tasks, batch by batch.

Each batch is one transaction with a constant number of statements whatever its size
(contacts, conversations, messages, send tasks and counts each inserted in bulk, ids fetched in
one query), and it marks its ``CampaignBatch`` materialised in that same transaction. The
campaign row is locked (``FOR NO KEY UPDATE``, which leaves status changes of its messages
free) for the batch, so two runs of the task never take the same batch: a worker killed
mid-batch loses the whole batch's transaction and the next run does it again, once.

A run works for about ``RUN_SECONDS`` and then enqueues the next run, so a 100,000-recipient
campaign never holds a send lane for long (interactive sends are taken between two runs).
"""

from __future__ import annotations

import logging
import time
import uuid

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from inbox.models import Campaign, CampaignBatch, Contact, Conversation, Message
from statuses import campaign_counts, tasks
from statuses.campaigns import sql
from statuses.campaigns.personalise import content_for, template_for
from statuses.machine import Status

log = logging.getLogger(__name__)

RUN_SECONDS = 2.0


def campaign_materialise(*, campaign_id: uuid.UUID | str) -> str:
    """Materialise batches for up to ``RUN_SECONDS``; enqueue the next run if some are left."""
    campaign_id = uuid.UUID(str(campaign_id))
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        outcome = batch_materialise(campaign_id)
        if outcome != "batch":
            return outcome
        if time.monotonic() > deadline:
            tasks.campaign_materialise_enqueue(campaign_id)
            return "continues"


def batch_materialise(campaign_id: uuid.UUID) -> str:
    """Materialise the campaign's next batch; say what happened (``batch`` if one was done)."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(no_key=True)
            .select_related("inbox")
            .filter(id=campaign_id)
            .first()
        )
        if campaign is None:
            return "gone"
        now = timezone.now()
        if campaign.status == Campaign.State.SCHEDULED:
            if campaign.scheduled_at and campaign.scheduled_at > now:
                tasks.campaign_materialise_enqueue(campaign.id, run_after=campaign.scheduled_at)
                return "early"
            campaign.status = Campaign.State.RUNNING
            Campaign.objects.filter(id=campaign.id).update(status=campaign.status, started_at=now)
        if campaign.status != Campaign.State.RUNNING:
            return campaign.status  # paused (resume enqueues again), cancelled, completed
        batch = (
            CampaignBatch.objects.filter(campaign=campaign, materialised_at__isnull=True)
            .order_by("number")
            .first()
        )
        if batch is None:
            return "done"
        created = _messages_create(campaign, batch.recipients, now)
        tasks.send_enqueue_many(
            [(str(message_id), 1) for message_id in created], priority=tasks.CAMPAIGN_PRIORITY
        )
        campaign_counts.messages_created_count(campaign.id, len(created))
        CampaignBatch.objects.filter(id=batch.id).update(materialised_at=now)
        Campaign.objects.filter(id=campaign.id).update(
            materialised=F("materialised") + len(batch.recipients), materialised_at=now
        )
    log.info("campaign %s: batch %s, %d messages", campaign_id, batch.number, len(created))
    return "batch"


def _messages_create(campaign: Campaign, recipients: list[list], now) -> list[uuid.UUID]:
    """Create the batch's contacts, conversations and messages; return the new messages' ids.

    A recipient whose ``customer_message_id`` was taken since the campaign was accepted gets no
    message (the existing one keeps the id); every other recipient gets exactly one.
    """
    inbox = campaign.inbox
    addresses = [row[1] for row in recipients]
    postgres = connection.vendor == "postgresql"
    if postgres:
        sql.contacts_insert(campaign.account_id, inbox.id, addresses, now)
    else:
        Contact.objects.bulk_create(
            [
                Contact(account_id=campaign.account_id, inbox=inbox, address=a, created_at=now)
                for a in addresses
            ],
            ignore_conflicts=True,
        )
    if postgres:
        contact_ids = sql.contact_ids(inbox.id, addresses)
    else:
        contact_ids = dict(
            Contact.objects.filter(inbox=inbox, address__in=addresses)
            .values_list("address", "id")
            .order_by()
        )
    if postgres:
        sql.conversations_insert(campaign.account_id, inbox.id, list(contact_ids.values()), now)
    else:
        Conversation.objects.bulk_create(
            [
                Conversation(
                    account_id=campaign.account_id,
                    inbox=inbox,
                    contact_id=contact_id,
                    last_message_at=now,
                    created_at=now,
                )
                for contact_id in contact_ids.values()
            ],
            ignore_conflicts=True,
        )
    if postgres:
        conversation_ids = sql.conversation_ids(inbox.id, list(contact_ids.values()))
    else:
        conversation_ids = dict(
            Conversation.objects.filter(inbox=inbox, contact_id__in=list(contact_ids.values()))
            .values_list("contact_id", "id")
            .order_by()
        )
    rows = [
        (
            uuid.uuid4(),
            conversation_ids[contact_ids[to]],
            to,
            content_for(campaign.content, parameters),
            template_for(campaign.template, parameters),
            customer_message_id or None,
        )
        for _, to, parameters, customer_message_id in recipients
    ]
    if postgres:
        ids = sql.messages_insert(
            campaign_id=campaign.id,
            account_id=campaign.account_id,
            inbox_id=inbox.id,
            channel_type=inbox.channel_type,
            rows=rows,
            now=now,
        )
    else:  # SQLite (the embedded demo): one writer, no clash to expect but a customer id
        ids = _messages_bulk_create(campaign, rows, now)
    _conversations_touch(list(conversation_ids.values()), now)
    return ids


def _messages_bulk_create(campaign: Campaign, rows: list[tuple], now) -> list[uuid.UUID]:
    inbox = campaign.inbox
    messages = [
        Message(
            id=message_id,
            account_id=campaign.account_id,
            inbox=inbox,
            conversation_id=conversation_id,
            channel_type=inbox.channel_type,
            direction=Message.Direction.OUTGOING,
            to_address=to,
            content=content,
            template=template,
            customer_message_id=customer_message_id,
            campaign_id=campaign.id,
            status=Status.QUEUED,
            queued_at=now,
            status_updated_at=now,
            created_at=now,
            updated_at=now,
        )
        for message_id, conversation_id, to, content, template, customer_message_id in rows
    ]
    Message.objects.bulk_create(messages, ignore_conflicts=True)
    ids = [m.id for m in messages]
    return list(Message.objects.filter(id__in=ids).values_list("id", flat=True).order_by())


def _conversations_touch(conversation_ids: list[int], now) -> None:
    """Move the conversations to the top of the inbox, locking them in id order (one
    statement; a concurrent batch of another campaign then cannot deadlock with this one)."""
    if connection.vendor != "postgresql":
        Conversation.objects.filter(id__in=conversation_ids).update(last_message_at=now)
        return
    table = Conversation._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS c SET last_message_at = %s FROM (SELECT id FROM {table} "  # noqa: S608
            "WHERE id = ANY(%s) ORDER BY id FOR UPDATE) AS l WHERE c.id = l.id",
            [now, conversation_ids],
        )
