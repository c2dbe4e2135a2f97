"""Pause, resume and cancel a campaign, and the sweep that finishes campaigns.

A send checks its campaign when it claims its message (``statuses.sending``): after a pause
or cancel commits, no further message of the campaign is handed to the provider (the few
already in flight finish). Resume enqueues the still-queued messages again (a message whose old
task is still waiting is claimed once: the second task finds it sent). Cancel ends every unsent
message ``failed`` with the code ``cancelled`` through the status service, so the change is
stored, counted and published like any other.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from inbox.exceptions import CampaignStateConflict
from inbox.models import Campaign, Message
from statuses import campaign_counts, correlation, services, tasks
from statuses.machine import Status
from statuses.models import SendTry, StatusEvent
from statuses.providers.base import StatusUpdate

log = logging.getLogger(__name__)

CANCELLED = "cancelled"  # the error code of a message its campaign's cancel ended
CHUNK = 1000
# Cancelled campaigns are swept for messages a retry left queued for this long after the cancel.
CANCEL_SWEEP_FOR = timedelta(days=1)

State = Campaign.State


def campaign_pause(*, campaign: Campaign) -> Campaign:
    return _move(campaign, "paused", {State.RUNNING, State.SCHEDULED}, State.PAUSED)


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Run a paused campaign again: the rest of its batches and its queued messages."""
    now = timezone.now()
    with transaction.atomic():
        campaign = _move(campaign, "resumed", {State.PAUSED}, State.RUNNING)
        if campaign.started_at is None:
            Campaign.objects.filter(id=campaign.id).update(started_at=now)
            campaign.started_at = now
        tasks.campaign_materialise_enqueue(campaign.id)
        queued = Message.objects.filter(campaign=campaign, status=Status.QUEUED)
        after = None
        while True:  # keyset chunks: the send tasks of a 100,000 campaign in 100 statements
            page = queued.filter(id__gt=after) if after else queued
            rows = list(page.order_by("id").values_list("id", "attempt")[:CHUNK])
            if not rows:
                break
            tasks.send_enqueue_many(
                [(str(mid), attempt) for mid, attempt in rows], priority=tasks.CAMPAIGN_PRIORITY
            )
            after = rows[-1][0]
    return campaign


def campaign_cancel(*, campaign: Campaign, source: str = StatusEvent.Source.API) -> Campaign:
    """Stop the campaign for good; its unsent messages end ``failed`` (``cancelled``)."""
    campaign = _move(
        campaign, "cancelled", {State.RUNNING, State.SCHEDULED, State.PAUSED}, State.CANCELLED
    )
    # The cancel is committed: from here on no send claims a message of this campaign.
    unsent_fail(campaign, source=source)
    return campaign


def unsent_fail(campaign: Campaign, *, source: str = StatusEvent.Source.SWEEP) -> int:
    """End the cancelled campaign's queued messages ``failed`` with ``cancelled``, in chunks of
    one transaction each (a constant number of statements per chunk); return how many."""
    failed = 0
    after = None
    while True:
        with transaction.atomic():
            queued = Message.objects.filter(campaign=campaign, status=Status.QUEUED)
            if after is not None:
                queued = queued.filter(id__gt=after)
            # Lock first: a send that claimed one of them before the cancel has committed its
            # try by the time we hold the row, and such a message is left to finish its send.
            rows = list(
                queued.order_by("id")
                .select_for_update(of=("self",))
                .values_list("id", "attempt")[:CHUNK]
            )
            if not rows:
                return failed
            after = rows[-1][0]
            in_flight = set(
                SendTry.objects.filter(
                    message_id__in=[mid for mid, _ in rows], outcome=SendTry.Outcome.IN_FLIGHT
                ).values_list("message_id", flat=True)
            )
            now = timezone.now()
            updates = [
                StatusUpdate(
                    provider_message_id="",
                    status=Status.FAILED,
                    raw_status="campaign cancelled",
                    occurred_at=now,
                    dedupe_key=f"cancel:{mid}:{attempt}",
                    correlation_id=correlation.make(mid, attempt),
                    error_code=CANCELLED,
                )
                for mid, attempt in rows
                if mid not in in_flight
            ]
            result = services.status_updates_apply(
                inbox=campaign.inbox, updates=updates, source=source
            )
            failed += len(result.changes)


def campaigns_sweep(now=None) -> int:
    """Finish campaigns: complete the ones with nothing left to send, restart a lost
    materialising, fail what a retry left queued after a cancel, and fold count rows."""
    now = now or timezone.now()
    changed = 0
    running = list(Campaign.objects.filter(status=State.RUNNING).select_related("inbox"))
    all_counts = campaign_counts.counts([c.id for c in running])
    for campaign in running:
        campaign_counts.compact(campaign.id)
        if campaign.materialised < campaign.total:
            stale = campaign.materialised_at or campaign.started_at or campaign.created_at
            if stale < now - timedelta(seconds=settings.CAMPAIGN_STALLED_AFTER):
                log.warning("campaign %s: materialising stalled; enqueued again", campaign.id)
                tasks.campaign_materialise_enqueue(campaign.id)
                changed += 1
        elif all_counts[campaign.id]["QUEUED"] == 0:
            changed += Campaign.objects.filter(id=campaign.id, status=State.RUNNING).update(
                status=State.COMPLETED, completed_at=now
            )
    recent = Q(completed_at__gte=now - CANCEL_SWEEP_FOR)
    for campaign in Campaign.objects.filter(recent, status=State.CANCELLED).select_related("inbox"):
        campaign_counts.compact(campaign.id)
        changed += unsent_fail(campaign)
    return changed


def _move(campaign: Campaign, action: str, allowed: set[str], to: str) -> Campaign:
    """Change the campaign's status if it is one of ``allowed`` (checked under the row lock)."""
    now = timezone.now()
    with transaction.atomic():
        current = Campaign.objects.select_for_update(no_key=True).get(id=campaign.id)
        if current.status not in allowed:
            raise CampaignStateConflict(action, current.status)
        values: dict = {"status": to}
        if to == State.CANCELLED:
            values["completed_at"] = now
        Campaign.objects.filter(id=campaign.id).update(**values)
        current.refresh_from_db()
    return current
