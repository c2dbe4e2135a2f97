from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from inbox.models import Account, Inbox, Message
from statuses.machine import UNRECOGNIZED, Status

EVENT_STATUSES = [*Status.values, UNRECOGNIZED]


class StatusEvent(models.Model):
    """The append-only log of every status statement about an outgoing message.

    An event is stored once per (inbox, dedupe_key); a redelivery only bumps
    ``duplicate_count``. Events whose provider id is not known yet are *parked* (no message)
    and attached the moment the send response records that id.
    """

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Provider webhook"
        SEND = "send", "Send response"
        SWEEP = "sweep", "Sweep"
        API = "api", "API report"
        WIDGET = "widget", "Web widget"
        AGENT = "agent", "Agent"

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Changed the status"
        RECORDED = "recorded", "Recorded, no change"
        PARKED = "parked", "Parked: provider id not known yet"
        UNMATCHED = "unmatched", "Unmatched after the retry window"
        STALE = "stale", "Older attempt: ignored"

    # No index of their own: event_unique_dedupe and event_provider_id start with the inbox,
    # event_message_attempt with the message (one fewer entry to write per event each).
    inbox = models.ForeignKey(
        Inbox, on_delete=models.CASCADE, related_name="status_events", db_index=False
    )
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    attempt = models.PositiveIntegerField(default=1)
    provider_message_id = models.CharField(max_length=255, blank=True)
    correlation_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, blank=True)
    raw_status = models.CharField(max_length=100, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=10, choices=Source.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.RECORDED)
    error_code = models.CharField(max_length=100, blank=True)
    error_title = models.CharField(max_length=500, blank=True)
    error_detail = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=400)
    duplicate_count = models.PositiveIntegerField(default=0)
    delivery = models.ForeignKey(
        "WebhookDelivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["inbox", "dedupe_key"], name="event_unique_dedupe"),
            models.CheckConstraint(
                condition=Q(status__in=EVENT_STATUSES), name="event_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["message", "attempt"], name="event_message_attempt"),
            # Parked events by provider id, and old attempts' provider ids (DESIGN §3.3).
            models.Index(fields=["inbox", "provider_message_id"], name="event_provider_id"),
            models.Index(
                fields=["received_at"], condition=Q(outcome="parked"), name="event_parked_age"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.raw_status or self.status} for {self.message_id or self.provider_message_id}"


class ParkedEvent(StatusEvent):
    """Admin view of status events waiting for (or given up on) their message."""

    class Meta:
        proxy = True
        verbose_name = "parked status event"


class WebhookDelivery(models.Model):
    """Every provider webhook call, recorded before parsing, kept for inspection.

    A rejected call (bad or missing signature) keeps its size, hash, selected headers and the
    verdict but not its body: strangers must not be able to fill the disk (issue #10). Rows
    are deleted after TICKMARK_KEEP_ACCEPTED_DAYS / TICKMARK_KEEP_REJECTED_DAYS
    (``statuses.sweeps.deliveries_prune``).
    """

    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        # Readable body, some entries skipped as malformed or not an address (see ``notes``).
        PARTIAL = "partial", "Accepted, some entries skipped"
        # Understood, nothing to apply (postbacks, referrals, consent, group messages…).
        IGNORED = "ignored", "Understood and ignored"
        HANDSHAKE = "handshake", "Handshake answered"
        FORBIDDEN = "forbidden", "Signature invalid or missing"
        MALFORMED = "malformed", "Malformed body"
        ERROR = "error", "Processing error"
        TOO_LARGE = "too_large", "Body too large (not kept)"

    # No index of its own: delivery_inbox_time starts with the inbox.
    inbox = models.ForeignKey(
        Inbox,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
    )
    channel_type = models.CharField(max_length=32)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    body_size = models.PositiveIntegerField(default=0)
    body_sha256 = models.CharField(max_length=64, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    http_status = models.PositiveSmallIntegerField()
    detail = models.TextField(blank=True)
    status_count = models.PositiveIntegerField(default=0)
    # Entries recorded but not applied, each {"kind", "reason", "entry"[, "code"]}: malformed,
    # invalid_sender, ignored, consent, provider_error (statuses.providers.base.SkipKind).
    notes = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["inbox", "-received_at"], name="delivery_inbox_time"),
            models.Index(fields=["received_at"], name="delivery_received"),  # retention sweep
        ]

    def __str__(self) -> str:
        return f"{self.channel_type} {self.verdict} at {self.received_at:%Y-%m-%d %H:%M:%S}"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")


def _signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSubscription(models.Model):
    """An integrator's endpoint for outgoing, signed Tickmark webhooks (DESIGN §8)."""

    class EventType(models.TextChoices):
        MESSAGE_CREATED = "message.created", "message.created"
        MESSAGE_STATUS_CHANGED = "message.status_changed", "message.status_changed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=100, default=_signing_secret)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url


class OutgoingEvent(models.Model):
    """One event to deliver to one subscription, with its delivery state."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Given up"

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="outgoing_events"
    )
    event_type = models.CharField(max_length=40)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="outgoing_pending_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription}"


class OutgoingAttempt(models.Model):
    """Each HTTP attempt to deliver an outgoing event, visible in the admin and the API."""

    event = models.ForeignKey(OutgoingEvent, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(default=timezone.now)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.TextField(blank=True)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"{self.http_status or self.error} at {self.attempted_at}"


class SendTry(models.Model):
    """One hand-over of a message to its provider (DESIGN §6), kept for the admin and support.

    A row is written *before* the request goes out (``in_flight``) and closed with the outcome
    afterwards. At most one try per message attempt may be in flight (a constraint), so two
    copies of a send task never both call the provider; a try left in flight by a worker that
    died is how a sweep knows the provider may or may not have the message.
    """

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        TRANSIENT = "transient", "Transient error: retried"
        UNKNOWN = "unknown", "No answer: outcome unknown"
        LOST = "lost", "Worker lost mid-request"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="send_tries")
    attempt = models.PositiveIntegerField()
    number = models.PositiveIntegerField(help_text="1 for the first try of this attempt")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.IN_FLIGHT)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    error_detail = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "attempt", "number"], name="send_try_unique_number"
            ),
            models.UniqueConstraint(
                fields=["message", "attempt"],
                condition=Q(outcome="in_flight"),
                name="send_try_one_in_flight",
            ),
        ]
        indexes = [
            models.Index(
                fields=["started_at"], condition=Q(outcome="in_flight"), name="send_try_in_flight"
            )
        ]

    def __str__(self) -> str:
        return f"try {self.number} of attempt {self.attempt}: {self.outcome}"


class ReadReceipt(models.Model):
    """One read receipt owed to a provider after an agent read a conversation (DESIGN §14).

    Written in the transaction that stamps ``Message.read_by_agent_at`` on the inbound messages
    it covers. That stamp is set at most once per message (under a row lock, only where it is
    still empty), so no message is ever covered by two receipts, however many agents open the
    conversation at once. ``message`` is the newest message covered, the one the provider call
    names (WhatsApp marks it and every earlier one; Messenger marks the thread): unique, one
    receipt per message. The worker claims a ``pending`` row with a conditional UPDATE before
    it calls, so duplicate tasks and several workers call the provider once.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # due at next_try_at
        SENDING = "sending", "Sending"  # claimed by a worker, the call under way
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"  # refused by the provider, or given up after the last try
        CANCELLED = "cancelled", "Cancelled"  # receipts were turned off before it went

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="read_receipts")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="read_receipt")
    covers = models.PositiveIntegerField(help_text="Inbound messages this one receipt marks read")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    tries = models.PositiveIntegerField(default=0)
    next_try_at = models.DateTimeField(default=timezone.now)
    error_code = models.CharField(max_length=100, blank=True)
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"read receipt {self.id} [{self.state}]"


class WorkerHeartbeat(models.Model):
    """The last time each lane of each ``manage.py worker`` finished a loop (``/healthz/worker``).

    Written from the lane's own loop, so a row that stops moving means that lane is stuck or
    cannot reach the database — exactly what a supervisor should be told.
    """

    worker_id = models.CharField(max_length=100)
    lane = models.CharField(max_length=20)
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["worker_id", "lane"], name="worker_heartbeat_unique")
        ]

    def __str__(self) -> str:
        return f"{self.worker_id}/{self.lane} at {self.seen_at:%H:%M:%S}"


class SendRateBucket(models.Model):
    """One inbox's shared send pace (``statuses.sendrate``), the same row for every worker.

    Times are seconds since the epoch on the database's clock, so workers on several hosts
    agree on them. ``next_free`` is the GCRA schedule of sends, ``wake_at`` the schedule on which
    sends that could not go soon enough are woken again; ``factor``, ``slowed_at`` and
    ``blocked_until`` are the slow-down after a provider's 429.
    """

    inbox = models.OneToOneField(
        Inbox, on_delete=models.CASCADE, primary_key=True, related_name="send_rate_bucket"
    )
    next_free = models.FloatField(default=0.0)
    wake_at = models.FloatField(default=0.0)
    factor = models.FloatField(default=1.0)
    slowed_at = models.FloatField(default=0.0)
    blocked_until = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"send rate of {self.inbox_id}: x{self.factor:.2f}"
