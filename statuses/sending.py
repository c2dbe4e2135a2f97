"""Hand outgoing messages to their provider (DESIGN §6). Run by the ``send_message`` task.

One send is three steps, so that a duplicate task, a crash or a slow provider never sends a
message twice:

1. *claim* (one short transaction): lock the message, check that it is still ``queued`` in the
   attempt the task names, and write a ``SendTry`` marked ``in_flight`` — at most one per
   attempt (a database constraint). A task that finds the message moved on, or another try in
   flight, does nothing. Last in the same transaction, so that its row lock is held only until
   the commit, the send takes its turn in the inbox's send rate (``statuses.sendrate``).
2. *call* the provider adapter over a shared HTTP client, outside any transaction.
3. *record* (one transaction): the outcome goes through ``services.message_record_send_result``
   (accepted → sent, LINE → delivered; rejected → failed with the provider's error; no answer →
   unknown), or a transient error re-enqueues the task with exponential backoff and jitter.

A try left ``in_flight`` by a worker that died is found by ``sweeps.send_tries_recover``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from inbox import consent
from inbox.models import Campaign, Message
from statuses import (
    consent_gate,
    correlation,
    netguard,
    providers,
    publish,
    sendrate,
    services,
    tasks,
)
from statuses.catalogue import ChannelType
from statuses.dbretry import retry_db
from statuses.machine import Status
from statuses.models import SendTry
from statuses.providers.base import (
    ErrorInfo,
    OutgoingMessage,
    ProviderSpec,
    SendOutcome,
    SendResult,
)

log = logging.getLogger(__name__)

RETRIES_EXHAUSTED = "send_retries_exhausted"
ADAPTER_ERROR = "adapter_error"
# Channels where repeating a send whose answer was lost cannot deliver it twice (LINE dedupes by
# X-Line-Retry-Key; the web widget "provider" is our own socket push): each spec says so.
IDEMPOTENT_CHANNELS = frozenset(
    channel_type for channel_type, spec in providers.REGISTRY.items() if spec.idempotent_send
)

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """Return the worker's shared HTTP client (connection pooling across sends)."""
    global _client
    with _client_lock:
        if _client is None:
            # Provider base URLs are tenant-given: only public addresses (issue #10).
            _client = netguard.http_client(
                timeout=settings.PROVIDER_HTTP_TIMEOUT, headers={"User-Agent": "Tickmark/1.0"}
            )
        return _client


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def message_send(*, message_id: uuid.UUID | str, attempt: int, bulk: bool = False) -> str:
    """Send one attempt of a message; return what happened (for logs and task results).

    ``bulk``: a campaign send, which yields the inbox's pace to interactive ones.
    """
    claimed = _claim(uuid.UUID(str(message_id)), attempt, bulk)
    if claimed is None:
        return "skipped"
    message, send_try, turn = claimed
    if not _take_turn(message, send_try, turn, bulk):  # the inbox's send rate
        return "deferred"
    adapter = providers.get(message.channel_type)
    outgoing = outgoing_message(message)
    config = {**(message.inbox.config or {}), "channel_type": message.channel_type}
    try:
        result = adapter.send(http_client(), config, outgoing)
    except Exception as exc:  # an adapter bug: we cannot know whether the request went out
        log.exception("adapter %s raised while sending %s", message.channel_type, message.id)
        result = SendResult(
            SendOutcome.UNKNOWN,
            error_code=ADAPTER_ERROR,
            error_title="Sending failed unexpectedly",
            error_detail=f"{type(exc).__name__}: {exc}"[:2000],
        )
    if result.rate_limited:
        sendrate.slow_down(inbox=message.inbox, retry_after=result.retry_after)
    # The provider has the message now: keep its answer through a database outage rather than
    # leave the try in flight (which the sweeps would turn into ``unknown``).
    return retry_db(
        lambda: _record(message, send_try, adapter, result, bulk),
        what=f"recording the send of {message.id}",
        give_up_after=settings.SEND_IN_FLIGHT_STALE_AFTER,
    )


def outgoing_message(message: Message) -> OutgoingMessage:
    template = message.template
    return OutgoingMessage(
        message_id=str(message.id),
        to=message.to_address,
        content=message.content,
        template=template,
        correlation_id=correlation.make(message.id, message.attempt),
        status_callback_url=message.inbox.webhook_url,
        attempt=message.attempt,
        subject=str((template or {}).get("subject") or ""),
    )


def retry_delay(try_number: int, retry_after: float | None = None) -> float:
    """Seconds before try ``try_number + 1``: exponential, with jitter, honouring Retry-After.

    "Equal jitter" (half fixed, half random) keeps a burst of failed sends from retrying in
    lockstep while still growing the wait; a provider's own Retry-After is a floor.
    """
    ceiling = min(settings.SEND_RETRY_MAX_DELAY, settings.SEND_RETRY_BASE * 2 ** (try_number - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, 3600.0))
    return delay


# Code's constants, written into the fairness count's text (plain words: nothing to quote).
_OUTGOING = Message.Direction.OUTGOING.value
_QUEUED = Status.QUEUED.value


def send_priority_sql(account_id: int, message_id: uuid.UUID) -> tuple[str, list]:
    """Task priority of a new send, as SQL for the task row's ``INSERT``: 0, minus the account's
    other messages still queued recently.

    The send lane takes tasks by priority, then in order: one account's burst of a thousand
    messages is sent after another account's single message, not before it (issue #10). One
    indexed count per message, in the statement that enqueues it; it stops just above campaign
    sends (``tasks.CAMPAIGN_PRIORITY``, which always come after interactive ones), so a long
    backlog costs no more than a short one. The new message itself (``message_id``) is not
    counted, whether its ``INSERT`` is visible to the count (an earlier statement of the same
    transaction) or not (the same statement: ``statuses.outbound_rows``). A campaign's queued
    messages are not counted: they wait behind every interactive send anyway.
    """
    since = timezone.now() - timedelta(seconds=settings.SEND_FAIRNESS_WINDOW)
    lowest = -(tasks.CAMPAIGN_PRIORITY + 1)
    # SQLite (the embedded mode) spells the scalar LEAST as MIN.
    least = "LEAST" if connection.vendor == "postgresql" else "MIN"
    # The partial index's own conditions are in the text, not parameters: the statement is
    # prepared and runs its generic plan (config.postgres), which can use
    # ``message_interactive_queued`` only where the text implies the index's condition. With
    # them as parameters the generic plan could not (it scanned the account's recent messages,
    # or the table), so PostgreSQL planned the statement anew on every call instead
    # (bench/README.md, tenth round).
    sql = f"""
        -{least}((
            SELECT count(*) FROM (
                SELECT 1 FROM inbox_message
                WHERE account_id = %s AND created_at >= %s
                    AND direction = '{_OUTGOING}' AND status = '{_QUEUED}'
                    AND campaign_id IS NULL AND id <> %s
                LIMIT %s
            ) AS backlog
        ), %s)
    """
    key = Message._meta.pk.get_db_prep_value(message_id, connection)  # a hex string on SQLite
    return sql, [account_id, since, key, lowest, lowest]


# ---------------------------------------------------------------------------------------------


def _claim(
    message_id: uuid.UUID, attempt: int, bulk: bool
) -> tuple[Message, SendTry, sendrate.Turn] | None:
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            # The contact for the consent check: read in this statement, after any opt-out
            # committed before it (not from a conversation cached elsewhere).
            .select_related("inbox", "conversation__contact", "template_ref")
            .filter(id=message_id)
            .first()
        )
        if message is None or message.attempt != attempt or message.status != Status.QUEUED:
            log.info("send %s attempt %s: nothing to do", message_id, attempt)
            return None
        if message.campaign_id and not _campaign_sending(message.campaign_id):
            log.info("send %s: its campaign is paused or cancelled", message_id)
            return None
        # Opted out while queued (DESIGN §14)
        if consent_gate.send_refused(message, contact=message.conversation.contact):
            return None
        tries = SendTry.objects.filter(message_id=message_id, attempt=attempt).aggregate(
            last=Max("number"),
            in_flight=Count("id", filter=Q(outcome=SendTry.Outcome.IN_FLIGHT)),
        )
        if tries["in_flight"]:
            log.info("send %s attempt %s: another try is in flight", message_id, attempt)
            return None
        send_try = SendTry.objects.create(
            message=message,
            attempt=attempt,
            number=(tries["last"] or 0) + 1,
            worker=worker_name(),
        )
        # Last: the inbox's pace row stays locked only until this commit.
        turn = sendrate.acquire(inbox=message.inbox, bulk=bulk)
    return message, send_try, turn


def _campaign_sending(campaign_id: uuid.UUID) -> bool:
    """Read after the message's lock: a pause or cancel committed before it stops this send."""
    return Campaign.objects.filter(id=campaign_id, status__in=Campaign.SENDING_STATES).exists()


def _take_turn(message: Message, send_try: SendTry, turn: sendrate.Turn, bulk: bool) -> bool:
    """Wait for the inbox's turn taken at the claim, or give the send back to the queue (False).

    A turn more than ``SEND_RATE_MAX_WAIT`` away is not waited for: the try, which never
    reached the provider, is deleted and the task enqueued again for the turn's time.
    """
    if turn.granted:
        time.sleep(turn.wait)
        return True

    def defer() -> None:
        with transaction.atomic():
            SendTry.objects.filter(id=send_try.id, outcome=SendTry.Outcome.IN_FLIGHT).delete()
            priority = tasks.bulk_priority(bulk)
            tasks.send_enqueue(message.id, message.attempt, delay=turn.wait, priority=priority)

    what = f"pacing the send of {message.id}"
    retry_db(defer, what=what, give_up_after=settings.SEND_IN_FLIGHT_STALE_AFTER)
    return False


def _record(
    message: Message, send_try: SendTry, adapter: ProviderSpec, result: SendResult, bulk: bool
) -> str:
    now = timezone.now()
    result = _explained(result, adapter.errors)
    try_outcome = SendTry.Outcome(result.outcome.value)
    retry_at = None
    with transaction.atomic():
        if result.outcome == SendOutcome.TRANSIENT:
            if send_try.number >= settings.SEND_MAX_TRIES:
                result = SendResult(
                    SendOutcome.REJECTED,
                    error_code=RETRIES_EXHAUSTED,
                    error_title="The provider kept failing",
                    error_detail=(
                        f"Gave up after {send_try.number} tries; last error "
                        f"{result.error_code}: {result.error_title or result.error_detail}"
                    )[:2000],
                )
            else:
                delay = retry_delay(send_try.number, result.retry_after)
                retry_at = now + timedelta(seconds=delay)
                priority = tasks.bulk_priority(bulk)
                tasks.send_enqueue(message.id, message.attempt, delay=delay, priority=priority)
        if result.outcome != SendOutcome.TRANSIENT:
            services.message_record_send_result(
                message_id=message.id,
                attempt=message.attempt,
                result=result,
                occurred_at=now,
                inbox_id=message.inbox_id,
            )
            consent.send_error_record(
                message=message, error_code=result.error_code, occurred_at=now
            )
        SendTry.objects.filter(id=send_try.id, outcome=SendTry.Outcome.IN_FLIGHT).update(
            outcome=try_outcome,
            provider_message_id=result.provider_message_id[:255],
            error_code=result.error_code[:100],
            error_detail=(result.error_title + ": " if result.error_title else "")
            + result.error_detail,
            retry_at=retry_at,
            finished_at=timezone.now(),
        )
        if (
            result.outcome == SendOutcome.ACCEPTED
            and message.channel_type == ChannelType.WEB_WIDGET
        ):
            publish.widget_message(message)
    log.info(
        "send %s attempt %s try %s via %s: %s %s%s",
        message.id,
        message.attempt,
        send_try.number,
        message.channel_type,
        result.outcome,
        result.error_code,
        f" (retry at {retry_at:%H:%M:%S})" if retry_at else "",
    )
    return str(result.outcome) if retry_at is None else "retrying"


def _explained(result: SendResult, catalogue: Mapping[str, ErrorInfo]) -> SendResult:
    """Fill a missing error title/detail from the adapter's error catalogue."""
    if not result.error_code or (result.error_title and result.error_detail):
        return result
    info = catalogue.get(result.error_code)
    if info is None:
        return result
    return replace(
        result,
        error_title=result.error_title or info.title,
        error_detail=result.error_detail or info.explanation,
    )
