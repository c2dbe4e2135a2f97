"""Demo data: an account, inboxes on several channels, conversations, messages in every status
with a real history (written through the same status services the webhooks use), and a
campaign that the embedded worker sends while the demo runs."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Account, Inbox, Message
from statuses import services
from statuses.campaigns.create import campaign_create
from statuses.campaigns.recipients import Recipient
from statuses.machine import UNRECOGNIZED, Status
from statuses.providers.base import InboundMessage, SendOutcome, SendResult, StatusUpdate

DEMO_ACCOUNT = "Demo"


def demo_inbox_specs(simulator_url: str) -> list[tuple[str, str, dict]]:
    def secret() -> str:
        return secrets.token_hex(16)

    return [
        (
            "WhatsApp Support",
            "whatsapp_cloud",
            {
                "phone_number_id": "106540352242922",
                "access_token": secret(),
                "app_secret": secret(),
                "verify_token": secret(),
                "api_base_url": f"{simulator_url}/whatsapp_cloud",
            },
        ),
        (
            "SMS (Twilio)",
            "twilio_sms",
            {
                "account_sid": "AC" + secrets.token_hex(16),
                "auth_token": secret(),
                "from_number": "+15017250604",
                "api_base_url": f"{simulator_url}/twilio_sms",
            },
        ),
        (
            "Messenger",
            "facebook",
            {
                "page_id": "1029384756",
                "page_access_token": secret(),
                "app_secret": secret(),
                "verify_token": secret(),
                "api_base_url": f"{simulator_url}/facebook",
            },
        ),
        (
            "Telegram bot",
            "telegram",
            {
                "bot_token": "123456:" + secret(),
                "secret_token": secret(),
                "api_base_url": f"{simulator_url}/telegram",
            },
        ),
        (
            "Website chat",
            "web_widget",
            {"title": "Chat with us", "greeting": "Hi! How can we help?"},
        ),
    ]


# (contact address, contact name, inbound text, [(outgoing text, [status events…])])
STORIES = {
    "whatsapp_cloud": [
        (
            "+16505076520",
            "Ada Lovelace",
            "Hi, where is my order #1042?",
            [
                ("It left our warehouse this morning.", ["sent", "delivered", "read"]),
                ("Tracking: TM-88121", ["sent", "delivered"]),
            ],
        ),
        (
            "+447700900123",
            "Grace Hopper",
            "Can I change my delivery address?",
            [
                ("Sure — what's the new address?", ["sent"]),
                ("We could not reach you on WhatsApp.", ["sent", "failed:131026"]),
                ("Your voice note was played", ["sent", "played"]),
            ],
        ),
    ],
    "twilio_sms": [
        (
            "+15558675310",
            "Alan Turing",
            "STATUS?",
            [
                ("Your appointment is confirmed for 10:00.", ["sent", "delivered"]),
                ("Reminder: appointment tomorrow.", ["failed:30003"]),
            ],
        ),
    ],
    "facebook": [
        (
            "6543210987",
            "Katherine Johnson",
            "Do you ship to Canada?",
            [
                ("Yes, in 3–5 business days.", ["sent", "delivered", "read"]),
            ],
        ),
    ],
    "telegram": [
        (
            "99887766",
            "Margaret Hamilton",
            "/start",
            [
                ("Welcome! Ask us anything.", ["sent"]),
            ],
        ),
    ],
    "web_widget": [
        (
            "visitor-7f3a",
            "Website visitor",
            "Hello, is anyone there?",
            [
                ("Hi! I'm here — how can I help?", ["sent", "delivered", "read"]),
                ("Still there?", []),
            ],
        ),
    ],
}

WHATSAPP_ERRORS = {
    "131026": ("Message undeliverable", "The number is not on WhatsApp or cannot receive."),
    "30003": ("Unreachable destination handset", "The handset is off or out of coverage."),
}


DEMO_CAMPAIGN_SIZE = 300


def demo_campaign(account: Account, inbox: Inbox) -> None:
    """A campaign that the embedded worker materialises and sends while the demo runs (with a
    few rejected recipients, to show why)."""
    recipients = [
        Recipient(i, f"+1555020{i:04d}", [f"Customer {i}", f"A-{1000 + i}"])
        for i in range(DEMO_CAMPAIGN_SIZE)
    ]
    recipients += [
        Recipient(DEMO_CAMPAIGN_SIZE, "not-a-number"),
        Recipient(DEMO_CAMPAIGN_SIZE + 1, "+15550200001"),  # a duplicate
    ]
    campaign_create(
        account=account,
        inbox=inbox,
        name="Order shipped (demo)",
        recipients=recipients,
        template={"name": "order_shipped", "language": {"code": "en_US"}},
    )


class Command(BaseCommand):
    help = "Load demo data (idempotent: does nothing if the demo account has inboxes)."

    def add_arguments(self, parser):
        parser.add_argument("--simulator-url", default=getattr(settings, "SIMULATOR_URL", ""))

    def handle(self, *args, simulator_url: str, **options):
        account, _ = Account.objects.get_or_create(name=DEMO_ACCOUNT)
        if account.inboxes.exists():
            self.stdout.write("Demo data already loaded.")
            return
        with transaction.atomic():
            for name, channel_type, config in demo_inbox_specs(
                simulator_url or "http://127.0.0.1:8025"
            ):
                inbox = Inbox.objects.create(
                    account=account, name=name, channel_type=channel_type, config=config
                )
                if "api_base_url" in config:
                    # The simulator finds the inbox (secrets, webhook URL) by the id in its path.
                    config["api_base_url"] = f"{config['api_base_url']}/{inbox.id}"
                    inbox.save(update_fields=["config"])
                for story in STORIES.get(channel_type, []):
                    self._story(inbox, *story)
                if channel_type == "whatsapp_cloud":
                    demo_campaign(account, inbox)
        self.stdout.write(f"Demo data loaded into account {account.name!r}.")

    def _story(self, inbox: Inbox, address: str, name: str, inbound: str, replies: list) -> None:
        start = timezone.now() - timedelta(minutes=30)
        inbox_services.inbound_messages_store(
            inbox=inbox,
            inbound=[
                InboundMessage(
                    contact_address=address,
                    provider_message_id=f"in-{secrets.token_hex(6)}",
                    content=inbound,
                    occurred_at=start,
                    contact_name=name,
                )
            ],
        )
        for index, (text, statuses) in enumerate(replies):
            at = start + timedelta(minutes=2 + 3 * index)
            message = Message.objects.create(
                account_id=inbox.account_id,
                inbox=inbox,
                conversation=inbox.conversations.get(contact__address=address),
                channel_type=inbox.channel_type,
                direction=Message.Direction.OUTGOING,
                to_address=address,
                content=text,
                queued_at=at,
                created_at=at,
                status_updated_at=at,
                updated_at=at,
            )
            self._history(inbox, message, statuses, at)

    def _history(self, inbox: Inbox, message: Message, statuses: list[str], at) -> None:
        provider_id = f"demo.{secrets.token_hex(8)}"
        if not statuses:
            return
        first, *later = statuses
        if first.startswith("failed:"):
            code = first.split(":", 1)[1]
            title, detail = WHATSAPP_ERRORS.get(code, ("Rejected", ""))
            result = SendResult(
                SendOutcome.REJECTED, error_code=code, error_title=title, error_detail=detail
            )
        else:
            result = SendResult(SendOutcome.ACCEPTED, provider_message_id=provider_id)
        services.message_record_send_result(
            message_id=message.id, attempt=1, result=result, occurred_at=at + timedelta(seconds=1)
        )
        updates = []
        for offset, raw in enumerate(later, start=1):
            status, _, code = raw.partition(":")
            title, detail = WHATSAPP_ERRORS.get(code, ("", ""))
            normalized = {"played": Status.READ}.get(status, status)
            if normalized not in Status.values:
                normalized = UNRECOGNIZED
            updates.append(
                StatusUpdate(
                    provider_message_id=provider_id,
                    status=normalized,
                    raw_status=status,
                    occurred_at=at + timedelta(seconds=20 * offset),
                    dedupe_key=f"{provider_id}:{status}",
                    error_code=code,
                    error_title=title,
                    error_detail=detail,
                )
            )
        services.status_updates_apply(inbox=inbox, updates=updates)
