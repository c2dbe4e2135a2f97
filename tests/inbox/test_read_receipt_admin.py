"""The admin side of read receipts: the inbox setting, read_by_agent_at on inbound messages and
the receipts owed to providers (issue #14 part 2)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from inbox.models import Inbox
from statuses import read_receipts
from statuses.models import ReadReceipt
from tests.statuses.read_receipt_support import receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_inbox_admin_switches_read_receipts_off(admin_client, inbox):
    page = admin_client.get(f"/admin/inbox/inbox/{inbox.id}/change/").content.decode()
    assert 'name="send_read_receipts"' in page and "checked" in page
    data = {
        "account": inbox.account_id,
        "name": inbox.name,
        **{f"config__{k}": v for k, v in inbox.config.items() if k == "phone_number_id"},
    }
    response = admin_client.post(f"/admin/inbox/inbox/{inbox.id}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Inbox.objects.get(id=inbox.id).send_read_receipts is False  # unchecked box


def test_message_and_receipt_admin_show_the_reading(admin_client, inbox):
    messages = receive(inbox, 2)
    read_receipts.conversation_read(conversation=messages[0].conversation)
    page = admin_client.get(f"/admin/inbox/message/{messages[0].id}/change/").content.decode()
    assert "Read by agent at" in page
    receipt = ReadReceipt.objects.get()
    listing = admin_client.get("/admin/statuses/readreceipt/").content.decode()
    assert str(receipt.message_id) in listing and "Pending" in listing
    detail = admin_client.get(f"/admin/statuses/readreceipt/{receipt.id}/change/")
    assert detail.status_code == 200
