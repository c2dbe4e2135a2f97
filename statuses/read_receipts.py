"""Read receipts back to the providers (DESIGN §14): when an agent reads a conversation, the
contact sees their messages read (WhatsApp blue ticks, Messenger "Seen").

Two halves, so that the page never waits for a provider:

1. ``conversation_read`` (the agent opens the conversation, or ``POST
   /api/v1/conversations/<id>/read``): one short transaction stamps ``read_by_agent_at`` on the
   inbound messages nobody had read, writes one ``ReadReceipt`` for them and enqueues one task.
   The stamp is taken under a row lock and only where it is still empty, so when several agents
   open the conversation at once exactly one of them stamps each message — and only that one
   owes the provider a receipt.
2. ``read_receipt_send`` (the worker): claims the receipt with a conditional UPDATE (pending →
   sending), calls the provider's ``mark_read`` (the spec's optional capability) outside any
   transaction, and records the outcome. A transient failure (429/5xx, no connection, no
   answer) is retried with exponential backoff, never sooner than the provider's Retry-After;
   after ``READ_RECEIPT_MAX_TRIES`` tries, or on a refusal, the receipt is given up and logged.

A lost answer is retried, unlike a lost message send: marking read twice shows the contact
nothing new, while a receipt never sent leaves their messages unread for good.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Conversation, Inbox, Message
from statuses import netguard, providers, tasks
from statuses.models import ReadReceipt
from statuses.providers.base import ReadMark, SendOutcome, SendResult

log = logging.getLogger(__name__)

ADAPTER_ERROR = "adapter_error"


class Receipt(enum.StrEnum):
    """What ``conversation_read`` did about the provider's receipt (the API answers it)."""

    QUEUED = "queued"  # a receipt is owed and its task enqueued
    NONE = "none"  # no inbound message was left unread: nothing new to tell
    OFF = "off"  # the inbox has read receipts turned off
    UNSUPPORTED = "unsupported"  # the provider has no read receipt for businesses


@dataclass(frozen=True)
class Reading:
    """The result of ``conversation_read``."""

    marked: int  # inbound messages stamped read by this call
    receipt: str  # a ``Receipt`` value


def conversation_read(*, conversation: Conversation) -> Reading:
    """Record that an agent has ``conversation`` in front of them: no unread count, its inbound
    messages read by the agent, and one read receipt owed to the provider for them."""
    inbox_services.conversation_mark_read(conversation=conversation)
    unread = Message.objects.filter(
        conversation=conversation,
        direction=Message.Direction.INCOMING,
        read_by_agent_at__isnull=True,
    )
    if not unread.exists():  # the common case, a conversation reopened: one indexed query
        return Reading(0, Receipt.NONE)
    inbox = conversation.inbox
    now = timezone.now()
    with transaction.atomic():
        # Locked in id order (no deadlock between readers); a reader that waited re-reads the
        # rows and finds them stamped, so each message is stamped, and owed, once.
        rows = list(
            unread.select_for_update()
            .order_by("id")
            .values_list("id", "provider_message_id", "created_at")
        )
        if not rows:
            return Reading(0, Receipt.NONE)
        Message.objects.filter(id__in=[row[0] for row in rows]).update(
            read_by_agent_at=now, updated_at=now
        )
        receipt = _receipt_owed(inbox)
        if receipt == Receipt.QUEUED:
            newest = max(rows, key=lambda row: (row[1] is not None, row[2], str(row[0])))
            owed = ReadReceipt.objects.create(
                inbox=inbox, message_id=newest[0], covers=len(rows), next_try_at=now
            )
            tasks.read_receipt_enqueue(owed.id)
    return Reading(len(rows), receipt)


def _receipt_owed(inbox: Inbox) -> str:
    if not inbox.send_read_receipts:
        return Receipt.OFF
    if providers.get(inbox.channel_type).mark_read is None:
        return Receipt.UNSUPPORTED
    return Receipt.QUEUED


# ---------------------------------------------------------------------------------------------
# The worker


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """Return the worker's shared, guarded HTTP client for receipts (tenant-given base URLs)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = netguard.http_client(
                timeout=settings.PROVIDER_HTTP_TIMEOUT, headers={"User-Agent": "Tickmark/1.0"}
            )
        return _client


def read_receipt_send(*, receipt_id: int) -> str:
    """Send one owed read receipt to its provider; return what happened (for logs)."""
    receipt = _claim(receipt_id)
    if receipt is None:
        return "skipped"
    inbox = receipt.inbox
    mark_read = providers.get(inbox.channel_type).mark_read
    if not inbox.send_read_receipts or mark_read is None:
        _finish(receipt, ReadReceipt.State.CANCELLED)
        return str(ReadReceipt.State.CANCELLED)
    mark = ReadMark(
        contact_address=receipt.message.conversation.contact.address,
        provider_message_id=receipt.message.provider_message_id or "",
    )
    config = {**(inbox.config or {}), "channel_type": inbox.channel_type}
    try:
        result = mark_read(http_client(), config, mark)
    except Exception as exc:  # an adapter bug: say so, and try again later
        log.exception("read receipt %s: adapter %s raised", receipt.id, inbox.channel_type)
        result = SendResult(
            SendOutcome.UNKNOWN, error_code=ADAPTER_ERROR, error_detail=type(exc).__name__
        )
    return _record(receipt, result)


def retry_delay(try_number: int, retry_after: float | None = None) -> float:
    """Seconds before try ``try_number + 1``: exponential with equal jitter; the provider's
    Retry-After (capped at an hour) is a floor."""
    ceiling = min(
        settings.READ_RECEIPT_RETRY_MAX_DELAY,
        settings.READ_RECEIPT_RETRY_BASE * 2 ** (try_number - 1),
    )
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 3600.0))
    return delay


def _claim(receipt_id: int) -> ReadReceipt | None:
    """Take a due pending receipt for this worker: the one conditional UPDATE that makes a
    duplicate task, or a second worker, find nothing to do."""
    now = timezone.now()
    claimed = ReadReceipt.objects.filter(
        id=receipt_id, state=ReadReceipt.State.PENDING, next_try_at__lte=now
    ).update(state=ReadReceipt.State.SENDING, tries=F("tries") + 1)
    if not claimed:
        log.info("read receipt %s: nothing to do", receipt_id)
        return None
    return ReadReceipt.objects.select_related("inbox", "message__conversation__contact").get(
        id=receipt_id
    )


def _record(receipt: ReadReceipt, result: SendResult) -> str:
    state = {
        SendOutcome.ACCEPTED: ReadReceipt.State.SENT,
        SendOutcome.REJECTED: ReadReceipt.State.FAILED,
    }.get(result.outcome, ReadReceipt.State.PENDING)
    delay = None
    if state == ReadReceipt.State.PENDING and receipt.tries >= settings.READ_RECEIPT_MAX_TRIES:
        state = ReadReceipt.State.FAILED
    elif state == ReadReceipt.State.PENDING:
        delay = retry_delay(receipt.tries, result.retry_after)
    with transaction.atomic():
        _finish(receipt, state, result, delay)
        if delay is not None:
            tasks.read_receipt_enqueue(receipt.id, delay=delay)
    if state == ReadReceipt.State.FAILED:
        # The code and the catalogue's title only: a provider's text may quote the request.
        log.warning(
            "read receipt %s via %s given up after %s tries: %s %s",
            receipt.id,
            receipt.inbox.channel_type,
            receipt.tries,
            result.error_code,
            result.error_title,
        )
    else:
        log.info(
            "read receipt %s via %s try %s: %s %s",
            receipt.id,
            receipt.inbox.channel_type,
            receipt.tries,
            result.outcome,
            result.error_code,
        )
    return str(state) if delay is None else "retrying"


def _finish(
    receipt: ReadReceipt,
    state: str,
    result: SendResult | None = None,
    delay: float | None = None,
) -> None:
    now = timezone.now()
    fields: dict[str, object] = {"state": state}
    if result is not None:
        fields["error_code"] = result.error_code[:100]
        fields["error_detail"] = (
            (result.error_title + ": " if result.error_title else "") + result.error_detail
        )[:2000]
    if delay is not None:
        fields["next_try_at"] = now + timedelta(seconds=delay)
    else:
        fields["finished_at"] = now
    ReadReceipt.objects.filter(id=receipt.id, state=ReadReceipt.State.SENDING).update(**fields)
