"""The campaign admin: counts by status from the count rows, and pause/cancel actions."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from inbox.models import Campaign, Message
from statuses.campaigns import create
from statuses.campaigns.recipients import Recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    browser = Client()
    browser.force_login(user)
    return browser


def test_changelist_shows_counts_and_actions_move_campaigns(
    admin_browser, account, inbox, materialise_all
):
    campaign, _ = create.campaign_create(
        account=account,
        inbox=inbox,
        name="Admin campaign",
        recipients=[Recipient(i, f"+1555000{i:04d}") for i in range(3)],
        template={"name": "t", "language": "en"},
    )
    materialise_all(campaign.id)
    url = reverse("admin:inbox_campaign_changelist")
    page = admin_browser.get(url).content.decode()
    assert "Admin campaign" in page
    assert '<td class="field-n_queued">3</td>' in page

    admin_browser.post(url, {"action": "campaign_pause", "_selected_action": [campaign.id]})
    assert Campaign.objects.get(id=campaign.id).status == Campaign.State.PAUSED
    admin_browser.post(url, {"action": "campaign_cancel", "_selected_action": [campaign.id]})
    assert Campaign.objects.get(id=campaign.id).status == Campaign.State.CANCELLED
    assert set(Message.objects.values_list("error_code", flat=True)) == {"cancelled"}
    page = admin_browser.get(url).content.decode()
    assert '<td class="field-n_failed">3</td>' in page
