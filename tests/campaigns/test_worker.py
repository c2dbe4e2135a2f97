"""Campaigns through real ``manage.py worker`` processes and a fake WhatsApp Cloud API:
pause stops sending within a second, resume sends the rest exactly once, cancel ends the
unsent ``failed`` (``cancelled``), and a worker killed mid-materialising and mid-sending loses
and duplicates nothing."""

from __future__ import annotations

import signal
import time
from collections import Counter

import psycopg
import pytest
from django.utils import timezone

from inbox.exceptions import CampaignStateConflict
from inbox.models import Campaign, Message
from statuses import campaign_counts, correlation, outbound, services
from statuses.campaigns import create, lifecycle, materialise
from statuses.campaigns.recipients import Recipient
from statuses.machine import Status
from statuses.models import SendTry
from statuses.providers.base import StatusUpdate
from tests.e2e.conftest import current_database_url, wait_for
from tests.fakes.whatsapp_send import FakeWhatsApp

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATE = {"name": "order_update", "language": "en_US"}


def new_campaign(account, inbox, n: int) -> Campaign:
    recipients = [Recipient(i, f"+1555{i:07d}", [f"n{i}"]) for i in range(n)]
    campaign, rejected = create.campaign_create(
        account=account, inbox=inbox, name="worker", recipients=recipients, template=TEMPLATE
    )
    assert not rejected
    return campaign


def unsent(campaign) -> int:
    return Message.objects.filter(campaign=campaign, status=Status.QUEUED).count()


def assert_each_sent_at_most_once(fake, campaign):
    per_message = fake.per_message()
    assert set(per_message.values()) <= {1}, "a message was sent twice"
    ids = {
        correlation.make(mid, 1)
        for mid in Message.objects.filter(campaign=campaign).values_list("id", flat=True)
    }
    assert set(per_message) <= ids


def assert_counts_are_a_recount(campaign):
    assert campaign_counts.counts([campaign.id])[campaign.id] == campaign_counts.recount(
        campaign.id
    )


def test_pause_stops_sending_within_a_second_and_resume_sends_the_rest_once(
    account, make_inbox, make_stack
):
    fake = FakeWhatsApp(delay=0.02)
    campaign = new_campaign(account, make_inbox(account, api_base_url=fake.url), 80)
    stack = make_stack()
    stack.start_worker()
    wait_for(lambda: fake.count() >= 10, timeout=60, message="the first sends")

    lifecycle.campaign_pause(campaign=campaign)
    paused_at = time.monotonic()
    time.sleep(2.0)
    late = [after for after in fake.arrived_after(paused_at) if after > 1.0]
    assert late == [], f"sends arrived {late} s after the pause"
    sent_while_paused = fake.count()
    assert sent_while_paused < 80
    assert unsent(campaign) == 80 - sent_while_paused

    lifecycle.campaign_resume(campaign=Campaign.objects.get(id=campaign.id))
    wait_for(
        lambda: unsent(campaign) == 0, timeout=90, message=lambda: f"{unsent(campaign)} unsent"
    )
    time.sleep(0.5)  # any duplicate task would be claimed by now
    assert fake.count() == 80
    assert_each_sent_at_most_once(fake, campaign)
    assert Counter(Message.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        Status.SENT: 80
    }
    assert_counts_are_a_recount(campaign)


def test_cancel_ends_the_unsent_failed_with_cancelled(account, make_inbox, make_stack):
    fake = FakeWhatsApp(delay=0.02)
    campaign = new_campaign(account, make_inbox(account, api_base_url=fake.url), 80)
    stack = make_stack()
    stack.start_worker()
    wait_for(lambda: fake.count() >= 10, timeout=60, message="the first sends")

    cancelled = lifecycle.campaign_cancel(campaign=campaign)
    assert cancelled.status == Campaign.State.CANCELLED
    cancelled_at = time.monotonic()
    wait_for(lambda: unsent(campaign) == 0, timeout=30, message="no message left queued")
    time.sleep(1.5)
    assert [after for after in fake.arrived_after(cancelled_at) if after > 1.0] == []
    sent = fake.count()
    statuses = Counter(
        Message.objects.filter(campaign=campaign).values_list("status", "error_code")
    )
    assert statuses == {(Status.SENT, ""): sent, (Status.FAILED, "cancelled"): 80 - sent}
    assert_each_sent_at_most_once(fake, campaign)
    assert_counts_are_a_recount(campaign)
    counts = campaign_counts.counts([campaign.id])[campaign.id]
    assert counts["FAILED"] == 80 - sent > 0


@pytest.mark.requires_postgres("holds a batch open with a second psycopg connection")
def test_worker_killed_mid_materialising_and_mid_sending_loses_and_duplicates_nothing(
    account, make_inbox, make_stack, monkeypatch
):
    monkeypatch.setattr(create, "BATCH", 20)
    fake = FakeWhatsApp(kill_at=45)
    campaign = new_campaign(account, make_inbox(account, api_base_url=fake.url), 200)
    # Hold the contact of batch 3's first recipient in an open transaction of our own: the
    # worker's batch 3 waits on it, inside its transaction, and is killed there.
    blocker = psycopg.connect(current_database_url())
    blocker.execute(
        "INSERT INTO inbox_contact (account_id, inbox_id, address, name, token, created_at, "
        "opted_out, opt_out_source, marketing_opted_out, marketing_opt_out_source) "
        "VALUES (%s, %s, %s, '', 'blocker-token', now(), false, '', false, '')",
        [account.id, campaign.inbox_id, "+15550000040"],
    )
    stack = make_stack()
    first = stack.start_worker(SWEEP_INTERVAL="0")
    wait_for(
        lambda: Campaign.objects.get(id=campaign.id).materialised == 40,
        timeout=60,
        message="two batches",
    )
    time.sleep(0.5)  # the worker is now blocked inside batch 3's transaction
    stack.stop(first, signal.SIGKILL)
    blocker.rollback()
    blocker.close()
    assert Campaign.objects.get(id=campaign.id).materialised == 40
    assert Message.objects.filter(campaign=campaign).count() == 40
    sent_before = fake.count()

    # The second worker finds the lost materialising (sweep), and is killed mid-send in turn.
    second = stack.start_worker(SWEEP_INTERVAL="0.3", CAMPAIGN_STALLED_AFTER="1")
    fake.worker_pid = second.pid
    assert fake.killed.wait(90), f"never reached the kill point ({fake.count()} sends)"
    second.wait(10)
    assert second.returncode == -signal.SIGKILL

    stack.start_worker(
        SWEEP_INTERVAL="0.3",
        CAMPAIGN_STALLED_AFTER="1",
        SEND_IN_FLIGHT_STALE_AFTER="1",
        SEND_REQUEUE_AFTER="1",
    )
    wait_for(
        lambda: (
            Campaign.objects.get(id=campaign.id).status == Campaign.State.COMPLETED
            and not SendTry.objects.filter(outcome="in_flight").exists()
        ),
        timeout=120,
        message=lambda: f"campaign completed ({unsent(campaign)} unsent, {fake.count()} sends)",
    )
    messages = Message.objects.filter(campaign=campaign)
    assert messages.count() == 200
    assert messages.values("to_address").distinct().count() == 200
    assert_each_sent_at_most_once(fake, campaign)
    assert fake.count() == 200 and sent_before < 45
    statuses = Counter(messages.values_list("status", flat=True))
    assert statuses == {Status.SENT: 199, Status.UNKNOWN: 1}  # the one in flight at the kill
    assert_counts_are_a_recount(campaign)


def test_a_completed_campaigns_failed_message_resent_by_hand_is_sent(
    account, make_inbox, make_stack
):
    fake = FakeWhatsApp()
    inbox = make_inbox(account, api_base_url=fake.url)
    campaign = new_campaign(account, inbox, 3)
    stack = make_stack()
    stack.start_worker()
    wait_for(
        lambda: Message.objects.filter(campaign=campaign, status=Status.SENT).count() == 3,
        timeout=60,
        message="the campaign sent",
    )
    failed = Message.objects.filter(campaign=campaign).first()
    services.status_updates_apply(
        inbox=inbox,
        updates=[
            StatusUpdate(
                provider_message_id=failed.provider_message_id,
                status=Status.FAILED,
                raw_status="failed",
                occurred_at=timezone.now(),
                dedupe_key="test-failed",
                error_code="999999",  # not in the catalogue: a resend may help
            )
        ],
    )
    lifecycle.campaigns_sweep()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.State.COMPLETED

    resent = outbound.message_resend(message=Message.objects.get(id=failed.id))
    assert (resent.status, resent.attempt) == (Status.QUEUED, 2)
    # Before, the send refused every message of a campaign that was not running: the resend
    # stayed queued for ever.
    wait_for(
        lambda: Message.objects.get(id=failed.id).status == Status.SENT,
        timeout=30,
        message="the resend sent",
    )
    assert fake.count() == 4


def test_a_cancelled_campaigns_message_cannot_be_resent(account, make_inbox):
    campaign = new_campaign(account, make_inbox(account), 2)
    while materialise.batch_materialise(campaign.id) == "batch":
        pass
    lifecycle.campaign_cancel(campaign=campaign)
    message = Message.objects.filter(campaign=campaign).first()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Status.FAILED, "cancelled")

    with pytest.raises(CampaignStateConflict):
        outbound.message_resend(message=message)
    message.refresh_from_db()
    assert (message.status, message.attempt) == (Status.FAILED, 1)
