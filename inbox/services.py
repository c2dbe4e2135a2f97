"""Writes on inbox objects: contacts, conversations, incoming messages and deletions, inboxes.

Outgoing messages are created and resent by ``statuses.outbound`` (they start a status's
life). This module sits below the statuses use cases (``statuses.ingestion`` and
``statuses.outbound`` call it) and above the publisher: see docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from inbox.models import Account, Contact, Conversation, Inbox, Message, ParkedDeletion
from statuses import publish
from statuses.machine import Status
from statuses.models import StatusEvent
from statuses.providers.base import Deletion, InboundMessage


def contact_get_or_create(*, inbox: Inbox, address: str, name: str = "") -> Contact:
    contact, created = Contact.objects.get_or_create(
        inbox=inbox, address=address, defaults={"account_id": inbox.account_id, "name": name}
    )
    if not created and name and not contact.name:
        contact.name = name
        contact.save(update_fields=["name"])
    return contact


def conversation_get_or_create(*, inbox: Inbox, contact: Contact) -> Conversation:
    conversation, _ = Conversation.objects.get_or_create(
        inbox=inbox, contact=contact, defaults={"account_id": inbox.account_id}
    )
    return conversation


def inbound_messages_store(*, inbox: Inbox, inbound: Sequence[InboundMessage]) -> list[Message]:
    """Store messages the contact sent (and echoes of ours sent from other tools).

    Idempotent: a redelivered inbound message (same provider id) is stored once. Provider ids
    are unique per direction: an inbound message whose id equals an outgoing one's is stored.
    """
    created: list[Message] = []
    # Deletions that arrived before their message (one query for the whole batch).
    parked_ids = set(
        ParkedDeletion.objects.filter(
            inbox=inbox,
            provider_message_id__in=[i.provider_message_id for i in inbound if not i.is_echo],
        ).values_list("provider_message_id", flat=True)
    )
    with transaction.atomic():
        for item in inbound:
            direction = Message.Direction.OUTGOING if item.is_echo else Message.Direction.INCOMING
            if Message.objects.filter(
                inbox=inbox, direction=direction, provider_message_id=item.provider_message_id
            ).exists():
                continue
            contact = contact_get_or_create(
                inbox=inbox, address=item.contact_address, name=item.contact_name
            )
            conversation = conversation_get_or_create(inbox=inbox, contact=contact)
            now = timezone.now()
            if item.is_echo and _own_send_in_flight(conversation, now):
                # Messenger echoes Tickmark's own sends too, sometimes before the send answer
                # names the mid: that answer will give our message this id (storing the echo
                # would take it first).
                continue
            direction = Message.Direction.OUTGOING if item.is_echo else Message.Direction.INCOMING
            # A deletion that arrived before its message was parked: apply it now.
            parked = (
                None
                if item.is_echo or item.provider_message_id not in parked_ids
                else ParkedDeletion.objects.filter(
                    inbox=inbox,
                    provider_message_id=item.provider_message_id,
                    contact_address__in=["", item.contact_address],
                ).first()
            )
            message = Message.objects.create(
                account_id=inbox.account_id,
                inbox=inbox,
                conversation=conversation,
                channel_type=inbox.channel_type,
                direction=direction,
                to_address=contact.address if item.is_echo else "",
                content=item.content,
                provider_message_id=item.provider_message_id or None,
                status=Status.SENT if item.is_echo else Status.DELIVERED,
                sent_at=item.occurred_at,
                delivered_at=None if item.is_echo else item.occurred_at,
                queued_at=item.occurred_at,
                status_updated_at=now,
                created_at=item.occurred_at,
                updated_at=now,
                origin=Message.Origin.EXTERNAL if item.is_echo else Message.Origin.TICKMARK,
                deleted_at=parked.occurred_at if parked else None,
            )
            if parked is not None:
                parked.delete()
            if item.is_echo:
                StatusEvent.objects.create(
                    inbox=inbox,
                    message=message,
                    provider_message_id=item.provider_message_id,
                    status=Status.SENT,
                    raw_status="echo",
                    occurred_at=item.occurred_at,
                    source=StatusEvent.Source.WEBHOOK,
                    outcome=StatusEvent.Outcome.APPLIED,
                    dedupe_key=f"echo:{item.provider_message_id}",
                )
            else:
                last = max(item.occurred_at, conversation.last_inbound_at or item.occurred_at)
                Contact.objects.filter(id=contact.id).update(last_inbound_at=last)
                conversation.last_inbound_at = last
                conversation.unread_count += 1
            conversation.last_message_at = max(conversation.last_message_at, item.occurred_at)
            conversation.save(update_fields=["last_inbound_at", "unread_count", "last_message_at"])
            created.append(message)
            publish.message_created(message, notify_integrators=False)
    return created


# How long a Tickmark send may wait for its answer while its echo is already here.
ECHO_RACE_WINDOW = timedelta(minutes=10)


def _own_send_in_flight(conversation: Conversation, now: datetime) -> bool:
    """Is a message Tickmark sent to this contact still waiting for the provider's answer?"""
    return Message.objects.filter(
        conversation=conversation,
        direction=Message.Direction.OUTGOING,
        origin=Message.Origin.TICKMARK,
        provider_message_id__isnull=True,
        status__in=[Status.QUEUED, Status.UNKNOWN],
        created_at__gte=now - ECHO_RACE_WINDOW,
    ).exists()


def inbound_deletions_apply(*, inbox: Inbox, deletions: Sequence[Deletion]) -> int:
    """Mark the contact's deleted messages deleted (DESIGN §5.1), whatever the order.

    The original inbound message keeps its content for the record; ``deleted_at`` makes the
    agent view say it was deleted. A deletion whose original is not stored yet is parked and
    applied by ``inbound_messages_store`` when the original comes. Only an incoming message
    from the same contact can be deleted this way; a repeated deletion changes nothing.
    Returns how many messages were marked.
    """
    marked = 0
    with transaction.atomic():
        for item in deletions:
            originals = Message.objects.filter(
                inbox=inbox,
                provider_message_id=item.provider_message_id,
                direction=Message.Direction.INCOMING,
            )
            if item.contact_address:
                originals = originals.filter(conversation__contact__address=item.contact_address)
            original = originals.first()
            if original is None:
                ParkedDeletion.objects.get_or_create(
                    inbox=inbox,
                    provider_message_id=item.provider_message_id,
                    defaults={
                        "contact_address": item.contact_address,
                        "occurred_at": item.occurred_at,
                    },
                )
                continue
            if original.deleted_at is not None:
                continue
            now = timezone.now()
            Message.objects.filter(id=original.id).update(
                deleted_at=item.occurred_at, updated_at=now
            )
            original.deleted_at = item.occurred_at
            marked += 1
    return marked


def conversation_mark_read(*, conversation: Conversation) -> None:
    """Reset the unread counter when an agent has the conversation in front of them."""
    if conversation.unread_count:
        Conversation.objects.filter(id=conversation.id).update(unread_count=0)
        conversation.unread_count = 0


def inbox_create(
    *,
    account: Account,
    name: str,
    channel_type: str,
    config: dict[str, Any],
    send_read_receipts: bool = True,
    max_send_rate: float | None = None,
) -> Inbox:
    """Connect a channel; the caller has checked ``config`` against DESIGN §4.1."""
    return Inbox.objects.create(
        account=account,
        name=name,
        channel_type=channel_type,
        config=config,
        send_read_receipts=send_read_receipts,
        max_send_rate=max_send_rate,
    )


# ``inbox_update(max_send_rate=...)`` left out: keep the rate (None sets the channel default).
UNCHANGED: Any = object()


def inbox_update(
    *,
    inbox: Inbox,
    name: str | None = None,
    config: dict | None = None,
    send_read_receipts: bool | None = None,
    max_send_rate: float | None = UNCHANGED,
) -> Inbox:
    """Rename an inbox, replace its (already merged and checked) config, switch its read
    receipts and/or set its send rate."""
    fields = []
    if max_send_rate is not UNCHANGED:
        inbox.max_send_rate = max_send_rate
        fields.append("max_send_rate")
    if name is not None:
        inbox.name = name
        fields.append("name")
    if config is not None:
        inbox.config = config
        fields.append("config")
    if send_read_receipts is not None:
        inbox.send_read_receipts = send_read_receipts
        fields.append("send_read_receipts")
    if fields:
        inbox.save(update_fields=fields)
    return inbox
