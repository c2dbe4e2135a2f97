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
# The highest max_send_rate an inbox accepts (WhatsApp Cloud's upgraded tier is 1,000 msg/s).
MAX_SEND_RATE = 10_000.0


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
    # Tell the provider when an agent has read the contact's messages (DESIGN §14); some
    # businesses do not want to show it.
    send_read_receipts = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    max_send_rate = models.FloatField(
        null=True,
        blank=True,
        help_text="Messages per second the workers together may send (empty: the channel's "
        "default, statuses.sendrate.DEFAULT_RATES).",
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "inboxes"
        constraints = [
            models.CheckConstraint(
                condition=Q(channel_type__in=ChannelType.values), name="inbox_channel_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_send_rate__isnull=True)
                | Q(max_send_rate__gt=0, max_send_rate__lte=MAX_SEND_RATE),
                name="inbox_max_send_rate_valid",
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


class ConsentSource(models.TextChoices):
    """Where an opt-out or opt-in came from (DESIGN §14)."""

    KEYWORD = "keyword", "SMS keyword"
    PROVIDER_ERROR = "provider_error", "Provider error"
    PROVIDER_EVENT = "provider_event", "Provider event"
    API = "api", "API"


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="contacts")
    address = models.CharField(max_length=320, help_text="E.164 phone, PSID, chat id, email…")
    name = models.CharField(max_length=200, blank=True)
    # The web widget authenticates a contact by this token (never shown to agents).
    token = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Consent (DESIGN §14), kept in step with the newest ConsentEvent by inbox/consent.py.
    opted_out = models.BooleanField(default=False)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    opt_out_source = models.CharField(max_length=20, choices=ConsentSource.choices, blank=True)
    # WhatsApp 131050: the contact stopped marketing templates only.
    marketing_opted_out = models.BooleanField(default=False)
    marketing_opted_out_at = models.DateTimeField(null=True, blank=True)
    marketing_opt_out_source = models.CharField(
        max_length=20, choices=ConsentSource.choices, blank=True
    )

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
    # No index of their own on account and conversation: every index in Meta that starts
    # with the column serves its lookups and cascades, and each index is one more entry to
    # write on every insert and status update of a message (bench/README.md, seventh round).
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # Denormalised from the inbox so status lookups and channel filters need no join.
    channel_type = models.CharField(max_length=32, choices=ChannelType.choices)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    to_address = models.CharField(max_length=320, blank=True)
    content = models.TextField(blank=True)
    template = models.JSONField(null=True, blank=True)
    # The synced WhatsApp template this message was sent with (DESIGN §13); the JSON above is
    # what was sent.
    template_ref = models.ForeignKey(
        "Template", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
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
    # Inbound only: when an agent first had this message in front of them (DESIGN §14). Set
    # once (statuses.read_receipts), which is what makes the provider's read receipt go once.
    read_by_agent_at = models.DateTimeField(null=True, blank=True)
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
            # A conversation's inbound messages no agent has read yet (statuses.read_receipts).
            models.Index(
                fields=["conversation"],
                condition=Q(direction="incoming", read_by_agent_at__isnull=True),
                name="message_unread_by_agent",
            ),
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
            # The fairness count of a new send (statuses.sending.send_priority_sql) reads only
            # interactive queued messages: without this, a 100,000-message campaign queued in
            # the account made every agent reply's count skip 100,000 index entries (~30-110 ms).
            models.Index(
                fields=["account", "created_at"],
                condition=Q(direction="outgoing", status="queued", campaign__isnull=True),
                name="message_interactive_queued",
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


class ConsentEvent(models.Model):
    """One opt-out or opt-in of a contact, kept for good (who, what, when, from which message
    or webhook). Append-only: ``Contact.opted_out`` follows the newest one of each scope."""

    class Kind(models.TextChoices):
        OPT_OUT = "opt_out", "Opted out"
        OPT_IN = "opt_in", "Opted in"

    class Scope(models.TextChoices):
        ALL = "all", "All messages"
        MARKETING = "marketing", "Marketing templates"

    Source = ConsentSource

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    # The keyword, the provider's error code or event, or who changed it through the API.
    detail = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    # The inbound message that carried a keyword, or the outgoing one a provider refused.
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The recorded webhook it came from (statuses.WebhookDelivery id; no foreign key: deliveries
    # are pruned after their retention, the consent record stays).
    webhook_delivery_id = models.BigIntegerField(null=True, blank=True)
    # The provider's natural key: the same webhook twice records one event.
    dedupe_key = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "dedupe_key"],
                condition=~Q(dedupe_key=""),
                name="consent_event_unique_dedupe",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["opt_out", "opt_in"]), name="consent_event_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(scope__in=["all", "marketing"]), name="consent_event_scope_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "scope", "-occurred_at"], name="consent_event_newest")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.scope}) via {self.source}: {self.contact}"


class TemplateCategory(models.TextChoices):
    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"


class TemplateStatus(models.TextChoices):
    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"
    IN_APPEAL = "IN_APPEAL"
    PENDING_DELETION = "PENDING_DELETION"
    DELETED = "DELETED"
    ARCHIVED = "ARCHIVED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"


class TemplateQuality(models.TextChoices):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"
    UNKNOWN = "UNKNOWN"


class Template(models.Model):
    """A WhatsApp message template of an inbox, as the provider last told us (DESIGN §13).

    Enums are stored as Meta spells them (uppercase). ``header_params`` and ``body_params``
    count the placeholders (``{{1}}`` or ``{{name}}``) a send must fill; a media header counts
    one (its link).
    """

    Category = TemplateCategory
    Status = TemplateStatus
    Quality = TemplateQuality

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="templates")
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="templates")
    provider_template_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=15)
    # Blank only for a template first heard of in a webhook that did not name its category.
    category = models.CharField(max_length=20, choices=TemplateCategory.choices, blank=True)
    status = models.CharField(
        max_length=20, choices=TemplateStatus.choices, default=TemplateStatus.PENDING
    )
    rejected_reason = models.CharField(max_length=200, blank=True)
    quality_score = models.CharField(
        max_length=10, choices=TemplateQuality.choices, default=TemplateQuality.UNKNOWN
    )
    components = models.JSONField(default=list, blank=True)
    header_params = models.PositiveSmallIntegerField(default=0)
    body_params = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "name", "language"], name="template_unique_name_language"
            ),
            models.CheckConstraint(
                condition=Q(status__in=TemplateStatus.values), name="template_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(category__in=["", *TemplateCategory.values]),
                name="template_category_valid",
            ),
            models.CheckConstraint(
                condition=Q(quality_score__in=TemplateQuality.values),
                name="template_quality_valid",
            ),
        ]
        indexes = [models.Index(fields=["account", "name"], name="template_account_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.language}) [{self.status}]"


class TemplateSync(models.Model):
    """When an inbox's templates were last synced from the provider (the worker's sweep)."""

    inbox = models.OneToOneField(Inbox, on_delete=models.CASCADE, related_name="template_sync")
    synced_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"templates of {self.inbox_id} synced {self.synced_at}"


class DeliveryHour(models.Model):
    """Outgoing messages per hour (and per day: ``daily``) of creation and current status: the
    rollup that answers delivery analytics (DESIGN §15) without reading the messages. Written
    only by the database triggers of ``inbox/rollup.py``, in the transaction of every write to a
    message. ``bucket`` is the start of the hour (or UTC day).

    No foreign keys: a deleted account's messages decrement these rows on their way out, in
    whatever order Django's cascade runs. ``shard`` spreads concurrent writers (creations in the
    same hour and inbox) over a few rows instead of one hot row; readers sum over it."""

    account_id = models.BigIntegerField()
    daily = models.BooleanField()
    bucket = models.DateTimeField()
    inbox_id = models.UUIDField()
    channel_type = models.CharField(max_length=32)
    template_name = models.TextField(blank=True)
    status = models.CharField(max_length=10)
    error_code = models.CharField(max_length=100, blank=True)
    shard = models.SmallIntegerField(default=0)
    n = models.BigIntegerField(default=0)
    n_delivered_at = models.BigIntegerField(default=0)
    n_read_at = models.BigIntegerField(default=0)
    error_title = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "account_id",
                    "daily",
                    "bucket",
                    "inbox_id",
                    "channel_type",
                    "template_name",
                    "status",
                    "error_code",
                    "shard",
                ],
                name="delivery_hour_key",
            )
        ]

    def __str__(self) -> str:
        span = "day" if self.daily else "hour"
        return f"{span} {self.bucket:%Y-%m-%d %H}h {self.inbox_id} {self.status}: {self.n}"


class DeliveryDuration(models.Model):
    """Histograms of time to deliver (``measure`` 0) and time to read (1) per hour (and day) of
    creation: ``n`` messages whose duration falls in log-spaced ``bin`` (``inbox/rollup.py``)."""

    account_id = models.BigIntegerField()
    daily = models.BooleanField()
    bucket = models.DateTimeField()
    inbox_id = models.UUIDField()
    channel_type = models.CharField(max_length=32)
    template_name = models.TextField(blank=True)
    measure = models.SmallIntegerField()
    bin = models.SmallIntegerField()
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "account_id",
                    "daily",
                    "bucket",
                    "inbox_id",
                    "channel_type",
                    "template_name",
                    "measure",
                    "bin",
                ],
                name="delivery_duration_key",
            )
        ]

    def __str__(self) -> str:
        span = "day" if self.daily else "hour"
        return f"{span} {self.bucket:%Y-%m-%d %H}h {self.measure}/{self.bin}: {self.n}"


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

    # A message of a campaign in one of these states may be handed to the provider: a running
    # campaign's, and a completed campaign's resent by hand. A paused campaign's wait for the
    # resume; a cancelled campaign's are never sent (and cannot be resent).
    SENDING_STATES = (State.RUNNING, State.COMPLETED)

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
