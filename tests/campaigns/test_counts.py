"""A campaign's counts, kept by the status write path, always equal a recount of its messages
— after a seeded random mix of send results, webhooks (duplicated, out of order, for unknown
ids), resends and a cancel — and cost one insert per status transaction."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Message
from statuses import campaign_counts, services
from statuses.campaigns import create, lifecycle, materialise
from statuses.campaigns.recipients import Recipient
from statuses.machine import Status
from statuses.providers.base import SendOutcome, SendResult, StatusUpdate

pytestmark = pytest.mark.django_db

WEBHOOK_STATUSES = [Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED]


def materialised_campaign(account, inbox, n):
    recipients = [Recipient(i, f"+1555{i:07d}") for i in range(n)]
    campaign, _ = create.campaign_create(
        account=account,
        inbox=inbox,
        name="random",
        recipients=recipients,
        template={"name": "t", "language": "en"},
    )
    while materialise.batch_materialise(campaign.id) == "batch":
        pass
    return campaign


def assert_counts_equal_recount(campaign):
    counts = campaign_counts.counts([campaign.id])[campaign.id]
    assert counts == campaign_counts.recount(campaign.id)
    return counts


@pytest.mark.parametrize("seed", range(6))
def test_counts_equal_a_recount_after_a_random_mix(account, inbox, seed):
    rng = random.Random(seed)
    campaign = materialised_campaign(account, inbox, 40)
    ids = list(Message.objects.filter(campaign=campaign).values_list("id", flat=True))
    now = timezone.now()
    sent: list[str] = []
    for step in range(120):
        action = rng.random()
        message = Message.objects.get(id=rng.choice(ids))
        if action < 0.3:
            outcome = rng.choice([SendOutcome.ACCEPTED, SendOutcome.REJECTED, SendOutcome.UNKNOWN])
            pid = f"wamid.{seed}.{step}"
            services.message_record_send_result(
                message_id=message.id,
                attempt=message.attempt,
                result=SendResult(
                    outcome,
                    provider_message_id=pid if outcome == SendOutcome.ACCEPTED else "",
                    error_code="131026" if outcome == SendOutcome.REJECTED else "",
                ),
            )
            if outcome == SendOutcome.ACCEPTED:
                sent.append(pid)
        elif action < 0.8 and sent:
            # A webhook batch: several statuses, some repeated, some for ids nobody knows.
            updates = []
            for _ in range(rng.randint(1, 6)):
                pid = rng.choice([*sent, "wamid.unknown"])
                status = rng.choice(WEBHOOK_STATUSES)
                at = now + timedelta(seconds=rng.randint(-5, 60))
                updates.append(
                    StatusUpdate(
                        provider_message_id=pid,
                        status=status,
                        raw_status=status,
                        occurred_at=at,
                        dedupe_key=f"{pid}:{status}:{rng.randint(0, 2)}",
                        error_code="131047" if status == Status.FAILED else "",
                    )
                )
            services.status_updates_apply(inbox=inbox, updates=updates)
        elif action < 0.9 and message.status in (Status.FAILED, Status.EXPIRED):
            services.message_start_attempt(message=message)
        else:
            services.message_status_report(
                message=message, status=Status.DELIVERED, source="api", occurred_at=now
            )
        if step % 20 == 0:
            assert_counts_equal_recount(campaign)
            campaign_counts.compact(campaign.id)
            assert_counts_equal_recount(campaign)
    lifecycle.campaign_cancel(campaign=campaign)
    counts = assert_counts_equal_recount(campaign)
    assert counts["QUEUED"] == 0
    assert sum(counts.values()) == 40


def test_a_status_transaction_counts_with_one_insert_and_nothing_without_campaigns(
    account, inbox, make_message
):
    campaign = materialised_campaign(account, inbox, 3)
    messages = list(Message.objects.filter(campaign=campaign))
    for i, message in enumerate(messages):
        services.message_record_send_result(
            message_id=message.id,
            attempt=1,
            result=SendResult(SendOutcome.ACCEPTED, provider_message_id=f"wamid.{i}"),
        )
    plain = make_message(inbox, to="+15550009999", provider_message_id="wamid.plain")
    updates = [
        StatusUpdate(
            provider_message_id=f"wamid.{i}",
            status=Status.DELIVERED,
            raw_status="delivered",
            occurred_at=timezone.now(),
            dedupe_key=f"d{i}",
        )
        for i in range(3)
    ]
    with CaptureQueriesContext(connection) as with_campaign:
        services.status_updates_apply(inbox=inbox, updates=updates)
    count_inserts = [q for q in with_campaign if 'INSERT INTO "inbox_campaigncount"' in q["sql"]]
    assert len(count_inserts) == 1
    with CaptureQueriesContext(connection) as without:
        services.status_updates_apply(
            inbox=inbox,
            updates=[
                StatusUpdate(
                    provider_message_id=plain.provider_message_id,
                    status=Status.DELIVERED,
                    raw_status="delivered",
                    occurred_at=timezone.now(),
                    dedupe_key="plain",
                )
            ],
        )
    assert not [q for q in without if "campaigncount" in q["sql"]]
    assert campaign_counts.counts([campaign.id])[campaign.id]["DELIVERED"] == 3
    assert_counts_equal_recount(campaign)
