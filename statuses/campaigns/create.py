"""Store a new campaign: its accepted recipients in compact batches, and the worker's task.

The answer comes as soon as this transaction commits; the messages are created by the worker
(``statuses.campaigns.materialise``), at ``scheduled_at`` if one is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from inbox.models import Account, Campaign, CampaignBatch, Inbox
from statuses import tasks
from statuses.campaigns import sql
from statuses.campaigns.recipients import Recipient, Rejection, recipients_check

# Recipients per batch: one transaction and a constant number of statements each when the
# worker materialises it (bench/README.md has the rate by batch size).
BATCH = 1000
MAX_RECIPIENTS = 100_000


def campaign_create(
    *,
    account: Account,
    inbox: Inbox,
    name: str,
    recipients: Sequence[Recipient],
    content: str = "",
    template: dict[str, Any] | None = None,
    scheduled_at: datetime | None = None,
) -> tuple[Campaign, list[Rejection]]:
    """Create a campaign of the acceptable ``recipients``; return it and the rejected ones.

    A campaign whose recipients are all rejected is still stored (and completed at once), so
    the integrator gets an id and the reasons.
    """
    accepted, rejected = recipients_check(
        inbox=inbox, recipients=recipients, free_text=template is None
    )
    now = timezone.now()
    later = scheduled_at is not None and scheduled_at > now
    with transaction.atomic():
        campaign = Campaign.objects.create(
            account=account,
            inbox=inbox,
            name=name,
            content=content,
            template=template,
            status=Campaign.State.SCHEDULED if later else Campaign.State.RUNNING,
            total=len(accepted),
            rejected=len(rejected),
            scheduled_at=scheduled_at,
            started_at=None if later else now,
            created_at=now,
        )
        if not accepted:
            Campaign.objects.filter(id=campaign.id).update(
                status=Campaign.State.COMPLETED, completed_at=now
            )
            campaign.refresh_from_db()
            return campaign, rejected
        batches = [
            [r.stored() for r in accepted[start : start + BATCH]]
            for start in range(0, len(accepted), BATCH)
        ]
        if connection.vendor == "postgresql":
            sql.batches_insert(campaign.id, batches)
        else:
            CampaignBatch.objects.bulk_create(
                CampaignBatch(campaign=campaign, number=number, recipients=recipients)
                for number, recipients in enumerate(batches)
            )
        tasks.campaign_materialise_enqueue(campaign.id, run_after=scheduled_at if later else None)
    return campaign, rejected
