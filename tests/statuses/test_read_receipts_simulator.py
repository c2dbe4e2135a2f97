"""The provider simulator answers read receipts (WhatsApp ``status: read``, Messenger
``mark_seen``) as the providers do, and plays no status webhook for them."""

from __future__ import annotations

import pytest

from statuses import read_receipts
from statuses.models import ReadReceipt
from statuses.simulator.providers import Inbox as SimulatedInbox
from statuses.simulator.server import ProviderSimulator, Scenario
from tests.statuses.read_receipt_support import CONFIGS, make_receipt_inbox, receive

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("channel_type", ["whatsapp_cloud", "whatsapp_360dialog", "facebook"])
def test_simulator_answers_a_read_receipt(account, channel_type):
    inboxes = {}
    with ProviderSimulator(scenario=Scenario.instant(), inboxes=inboxes.get) as simulator:
        inbox = make_receipt_inbox(account, channel_type, "")
        inbox.config["api_base_url"] = simulator.base_url(channel_type, inbox.id)
        inbox.save(update_fields=["config"])
        inboxes[str(inbox.id)] = SimulatedInbox(
            str(inbox.id), channel_type, dict(inbox.config), inbox.webhook_url
        )
        messages = receive(inbox, 2)
        read_receipts.conversation_read(conversation=messages[0].conversation)
        receipt = ReadReceipt.objects.get()

        assert read_receipts.read_receipt_send(receipt_id=receipt.id) == "sent"

        (call,) = simulator.sends
        assert call.status == 200 and call.provider_id == ""
        assert simulator.idle()  # nothing to report back: no webhook is played


def test_simulator_refuses_a_receipt_with_a_wrong_token(account):
    inboxes = {}
    with ProviderSimulator(scenario=Scenario.instant(), inboxes=inboxes.get) as simulator:
        inbox = make_receipt_inbox(account, "whatsapp_cloud", "")
        inbox.config["api_base_url"] = simulator.base_url("whatsapp_cloud", inbox.id)
        inbox.save(update_fields=["config"])
        inboxes[str(inbox.id)] = SimulatedInbox(
            str(inbox.id),
            "whatsapp_cloud",
            {**CONFIGS["whatsapp_cloud"], "access_token": "another"},
            inbox.webhook_url,
        )
        messages = receive(inbox, 1)
        read_receipts.conversation_read(conversation=messages[0].conversation)

        result = read_receipts.read_receipt_send(receipt_id=ReadReceipt.objects.get().id)

        assert result == "failed"
        assert ReadReceipt.objects.get().error_code == "190"
