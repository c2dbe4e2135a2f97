"""The worker's materialising: a constant number of statements per batch, exactly once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from inbox.models import Campaign, CampaignBatch, Contact, Conversation, Message
from statuses import campaign_counts, tasks
from statuses.campaigns import create, materialise
from statuses.campaigns.recipients import Recipient

pytestmark = pytest.mark.django_db

TEMPLATE = {"name": "order_shipped", "language": {"code": "en_US"}}


def new_campaign(account, inbox, n, *, start=0, customer_ids=False):
    recipients = [
        Recipient(
            i,
            f"+1555{start + i:07d}",
            [f"p{i}"],
            f"c-{start + i}" if customer_ids else None,
        )
        for i in range(n)
    ]
    campaign, rejected = create.campaign_create(
        account=account, inbox=inbox, name="c", recipients=recipients, template=TEMPLATE
    )
    assert rejected == []
    return campaign


def statements_for_one_batch(campaign) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert materialise.batch_materialise(campaign.id) == "batch"
    # The test runs inside a transaction: the batch's own is a savepoint here.
    return sum(1 for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE")))


@pytest.mark.requires_postgres("pins the PostgreSQL statements of a campaign batch")
@pytest.mark.parametrize("customer_ids", [False, True])
def test_a_batch_takes_the_same_statements_whatever_its_size(
    account, inbox, settings, monkeypatch, customer_ids
):
    monkeypatch.setattr(create, "BATCH", 5)
    small = new_campaign(account, inbox, 5, customer_ids=customer_ids)
    monkeypatch.setattr(create, "BATCH", 400)
    # Half of the large batch's contacts exist already (earlier conversations).
    Contact.objects.bulk_create(
        Contact(account=account, inbox=inbox, address=f"+1555{1000 + i:07d}") for i in range(200)
    )
    large = new_campaign(account, inbox, 400, start=1000, customer_ids=customer_ids)
    assert statements_for_one_batch(small) == statements_for_one_batch(large)
    assert Message.objects.filter(campaign=large).count() == 400
    assert Conversation.objects.filter(inbox=inbox).count() == 405
    assert DBTaskResult.objects.filter(task_path=tasks.send_message.module_path).count() == 405


@pytest.mark.requires_postgres("pins the PostgreSQL statements of a campaign batch")
def test_statement_count_per_batch_is_pinned(account, inbox, monkeypatch):
    monkeypatch.setattr(create, "BATCH", 50)
    campaign = new_campaign(account, inbox, 50)
    # The campaign lock, the batch, contacts (insert, ids), conversations (insert, ids),
    # messages, conversations touched, send tasks, counts, batch done, campaign progress.
    assert statements_for_one_batch(campaign) == 12


def test_batches_are_materialised_once_and_campaign_progress_grows(account, inbox, monkeypatch):
    monkeypatch.setattr(create, "BATCH", 10)
    campaign = new_campaign(account, inbox, 25)
    assert CampaignBatch.objects.filter(campaign=campaign).count() == 3
    assert materialise.batch_materialise(campaign.id) == "batch"
    campaign.refresh_from_db()
    assert campaign.materialised == 10
    assert materialise.campaign_materialise(campaign_id=campaign.id) == "done"
    assert materialise.campaign_materialise(campaign_id=campaign.id) == "done"  # again: nothing
    campaign.refresh_from_db()
    assert campaign.materialised == 25
    assert Message.objects.filter(campaign=campaign).count() == 25
    assert len(set(Message.objects.values_list("to_address", flat=True))) == 25
    sends = DBTaskResult.objects.filter(task_path=tasks.send_message.module_path)
    assert sends.count() == 25
    assert set(sends.values_list("priority", flat=True)) == {tasks.CAMPAIGN_PRIORITY}
    assert campaign_counts.counts([campaign.id])[campaign.id]["QUEUED"] == 25


def test_a_paused_campaign_stops_materialising_and_a_cancelled_one_for_good(
    account, inbox, monkeypatch
):
    monkeypatch.setattr(create, "BATCH", 10)
    campaign = new_campaign(account, inbox, 30)
    materialise.batch_materialise(campaign.id)
    Campaign.objects.filter(id=campaign.id).update(status=Campaign.State.PAUSED)
    assert materialise.batch_materialise(campaign.id) == "paused"
    assert Message.objects.count() == 10
