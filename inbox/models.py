from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from statuses import providers
from statuses.catalogue import CHANNELS, Channel, ChannelType
from statuses.machine import Status, tick_for

# Config keys holding secrets: never echoed by the API, masked in the admin, never logged. Each
# provider declares its own (``ProviderSpec.config.secret``).
SECRET_CONFIG_KEYS = providers.secret_keys()

SERVICE_WINDOW = timedelta(hours=24)


class Account(models.Model):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """An agent (a Django user) belongs to exactly one account."""

    class Role(models.TextChoices):
        AGENT = "agent", "Agent"
        ADMIN = "admin", "Administrator"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)

    def __str__(self) -> str:
        return f"{self.user} @ {self.account}"


def hash_api_key(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough (no dictionary to attack) and
    # keeps authentication to one indexed lookup.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    PREFIX_LENGTH = 10

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.account})"

    @staticmethod
    def generate() -> str:
        return "tm_" + secrets.token_urlsafe(32)

    def set_key(self, raw_key: str) -> None:
        self.prefix = raw_key[: self.PREFIX_LENGTH]
        self.key_hash = hash_api_key(raw_key)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class OnChannel:
    """``channel`` and ``family`` of a row that stores its ``channel_type`` (an inbox, and each
    of its messages, which keep a copy so message queries never join the inbox)."""

    channel_type: str

    @property
    def channel(self) -> Channel:
        return CHANNELS[self.channel_type]

    @property
    def family(self) -> str:
        return self.channel.family


class Inbox(OnChannel, models.Model):
    """One channel connection (a WhatsApp number, a Twilio sender, a Telegram bot, …)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inboxes")
    name = models.CharField(max_length=200)
    channel_type = models.CharField(max_length=32, choices=ChannelType.choices)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "inboxes"
        constraints = [
            models.CheckConstraint(
                condition=Q(channel_type__in=ChannelType.values), name="inbox_channel_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_type_display()})"

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.channel_type}/{self.id}/"

    @property
    def webhook_url(self) -> str:
        return settings.PUBLIC_BASE_URL + self.webhook_path

    def public_config(self) -> dict:
        return {k: v for k, v in self.config.items() if k not in SECRET_CONFIG_KEYS}

    def masked_config(self) -> dict:
        return {k: ("••••••" if k in SECRET_CONFIG_KEYS else v) for k, v in self.config.items()}


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="contacts")
    address = models.CharField(max_length=320, help_text="E.164 phone, PSID, chat id, email…")
    name = models.CharField(max_length=200, blank=True)
    # The web widget authenticates a contact by this token (never shown to agents).
    token = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["inbox", "address"], name="contact_unique_address")
        ]
        indexes = [
            # Contacts that never wrote, oldest first: the idle widget contact sweep's scan.
            models.Index(
                fields=["inbox", "created_at"],
                name="contact_never_wrote",
                condition=models.Q(last_inbound_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return self.name or self.address


class Conversation(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="conversations")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    last_message_at = models.DateTimeField(default=timezone.now)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["inbox", "contact"], name="conversation_per_contact")
        ]
        indexes = [models.Index(fields=["account", "-last_message_at"])]

    def __str__(self) -> str:
        return f"{self.contact} via {self.inbox.name}"

    def service_window_open(self, now=None) -> bool:
        if self.last_inbound_at is None:
            return False
        return (now or timezone.now()) - self.last_inbound_at < SERVICE_WINDOW


class Message(OnChannel, models.Model):
    class Direction(models.TextChoices):
        OUTGOING = "outgoing", "Outgoing"
        INCOMING = "incoming", "Incoming"

    class Origin(models.TextChoices):
        TICKMARK = "tickmark", "Sent by Tickmark"
        # An echo: sent by the business from another tool (Messenger/Instagram is_echo, WhatsApp
        # smb_message_echoes). Tickmark never sent it, so no sweep may expire it.
        EXTERNAL = "external", "Sent from another app"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="messages")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Denormalised from the inbox so status lookups and channel filters need no join.
    channel_type = models.CharField(max_length=32, choices=ChannelType.choices)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    to_address = models.CharField(max_length=320, blank=True)
    content = models.TextField(blank=True)
    template = models.JSONField(null=True, blank=True)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    customer_message_id = models.CharField(max_length=200, null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, null=True, blank=True)
    attempt = models.PositiveIntegerField(default=1)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error_code = models.CharField(max_length=100, blank=True)
    error_title = models.CharField(max_length=500, blank=True)
    error_detail = models.TextField(blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    status_updated_at = models.DateTimeField(default=timezone.now)
    # Grows with every applied change; live clients drop events older than what they show.
    version = models.PositiveIntegerField(default=1)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.TICKMARK)
    # The contact deleted (unsent) this inbound message (Messenger/Instagram is_deleted,
    # WhatsApp revoke); the content is kept for the record, the agent view says it was deleted.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Indexed by ``message_campaign_status`` (campaign first), not by a second index of its own.
    campaign = models.ForeignKey(
        "Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
    )
    # The change feed's position (docs/change-feed.md). Set by a database trigger on every
    # insert and update, whatever the code path, so values written from Python are ignored:
    # the writing transaction's id (PostgreSQL; 0 on SQLite) and a per-change sequence number.
    change_xid = models.BigIntegerField(default=0, db_default=0, editable=False)
    change_seq = models.BigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "customer_message_id"],
                condition=Q(customer_message_id__isnull=False),
                name="message_unique_customer_id",
            ),
            # Per direction: a provider may number a contact's messages and ours in one space
            # or in two, so an inbound id can equal an outgoing one (DESIGN §5.1).
            models.UniqueConstraint(
                fields=["inbox", "direction", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_unique_provider_id_per_direction",
            ),
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="message_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=["outgoing", "incoming"]),
                name="message_direction_valid",
            ),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="message_attempt_positive"),
        ]
        indexes = [
            models.Index(fields=["account", "updated_at", "id"], name="message_account_updated"),
            models.Index(
                fields=["account", "change_xid", "change_seq"], name="message_account_change"
            ),
            models.Index(fields=["account", "created_at", "id"], name="message_account_created"),
            models.Index(fields=["conversation", "created_at"], name="message_conversation"),
            models.Index(
                fields=["campaign", "status"],
                condition=Q(campaign__isnull=False),
                name="message_campaign_status",
            ),
            models.Index(
                fields=["status", "queued_at"],
                condition=Q(status__in=["queued", "unknown", "sent", "received"]),
                name="message_open_status",
            ),
            # Delivery analytics (inbox/analytics.py): an index-only scan of a period's outgoing
            # messages, and the failures alone for the top errors (bench/README.md).
            models.Index(
                fields=[
                    *("account", "created_at", "status", "channel_type", "inbox"),
                    *("sent_at", "delivered_at", "read_at"),
                ],
                condition=Q(direction="outgoing"),
                name="message_outgoing_stats",
            ),
            models.Index(
                fields=["account", "created_at"],
                condition=Q(direction="outgoing", status__in=["failed", "expired"]),
                name="message_outgoing_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.id} [{self.status}]"

    @property
    def tick(self) -> str:
        return tick_for(self.status)

    @property
    def is_terminal(self) -> bool:
        return self.channel.is_terminal(self.status)


class ParkedDeletion(models.Model):
    """A contact's deletion of a message that is not stored yet (the deletion arrived before
    the original): applied the moment the original is stored (DESIGN §5.1)."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="parked_deletions")
    provider_message_id = models.CharField(max_length=255)
    contact_address = models.CharField(max_length=320, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "provider_message_id"], name="parked_deletion_unique"
            )
        ]

    def __str__(self) -> str:
        return f"deletion of {self.provider_message_id}"


# ---------------------------------------------------------------------------------------------
# Campaigns (DESIGN §16): the logic lives in statuses/campaigns/, the counts in
# statuses/campaign_counts.py.
# ---------------------------------------------------------------------------------------------


class Campaign(models.Model):
    """One proactive send to many recipients, followed together (DESIGN §16).

    ``total`` recipients were accepted; the worker turns them into messages batch by batch
    (``materialised`` grows with each committed batch). Counts by status are not columns:
    they are ``CampaignCount`` deltas written in each status change's own transaction.
    """

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="campaigns")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    content = models.TextField(blank=True)
    template = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=State.choices, default=State.SCHEDULED)
    total = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    materialised = models.PositiveIntegerField(default=0)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Written by every batch the worker commits: a campaign still short of ``total`` whose
    # last batch is old lost its worker, and a sweep enqueues the rest again.
    materialised_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "-created_at"], name="campaign_account")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["scheduled", "running", "paused", "completed", "cancelled"]
                ),
                name="campaign_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(materialised__lte=models.F("total")),
                name="campaign_materialised_le_total",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignBatch(models.Model):
    """Up to ``statuses.campaigns.BATCH`` accepted recipients, stored compactly until the
    worker turns them into messages in one transaction (then ``materialised_at`` is set in that
    same transaction: a batch is materialised exactly once, whatever crashes)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    # [[index, to, parameters | null, customer_message_id | null], …]
    recipients = models.JSONField()
    materialised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaign_batch_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} batch {self.number}"


class CampaignCount(models.Model):
    """A change of a campaign's count of messages in one status (+n or -n).

    Insert-only, so concurrent status transactions never wait on a shared counter row (and
    cannot deadlock on one); a sweep folds them into one row per status. The count of a status
    is the sum of its rows (``statuses.campaign_counts``).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="count_deltas")
    status = models.CharField(max_length=10, choices=Status.choices)
    delta = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["campaign", "status"], name="campaign_count_status")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.status} {self.delta:+d}"
