"""Provider-neutral dataclasses between provider adapters and the domain.

Adapters (one module per provider) never touch the ORM: they verify a webhook, parse it into
these frozen dataclasses, and send a message over HTTP, returning a ``SendResult``.
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from statuses.machine import ALWAYS_TERMINAL, PROGRESS_RANK, Status


class MalformedPayload(ValueError):
    """The webhook body cannot be parsed (answered 400; the raw delivery is kept)."""


@dataclass(frozen=True)
class WebhookRequest:
    """A received webhook, decoupled from Django.

    ``url`` is the public URL the provider called (PUBLIC_BASE_URL + path + query), which is
    what Twilio signs. ``headers`` keys are lowercase.
    """

    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    remote_addr: str = ""  # the caller's address (rate limit of rejected calls)


@dataclass(frozen=True)
class StatusUpdate:
    """One provider statement about one outgoing message."""

    provider_message_id: str
    status: str  # a machine.Status value, or machine.UNRECOGNIZED
    raw_status: str
    occurred_at: datetime
    dedupe_key: str  # the provider's natural key, unique within the inbox (reference §0.1)
    correlation_id: str = ""  # our own id echoed back by the provider (see statuses.correlation)
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""
    recipient: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Watermark:
    """Every outgoing message to ``contact_address`` sent at or before ``up_to`` reached
    ``status`` (Messenger/Instagram/TikTok/Viber read and delivery watermarks).

    ``up_to_provider_message_id`` is set instead of (or besides) ``up_to`` when the provider
    names the newest message covered (Instagram ``read.mid``, Viber ``message_token``).
    """

    contact_address: str
    status: str
    up_to: datetime | None
    occurred_at: datetime
    dedupe_key: str
    raw_status: str
    up_to_provider_message_id: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A message the contact sent us."""

    contact_address: str
    provider_message_id: str
    content: str
    occurred_at: datetime
    contact_name: str = ""
    # An echo is a message the business sent from another tool (Messenger is_echo): stored as
    # outgoing, already sent.
    is_echo: bool = False


@dataclass(frozen=True)
class Deletion:
    """The contact deleted (unsent) a message they had sent us (Messenger/Instagram
    ``is_deleted``, WhatsApp ``revoke``): the original inbound message is marked deleted."""

    contact_address: str
    provider_message_id: str  # the id of the original message
    occurred_at: datetime


class ConsentScope(enum.StrEnum):
    """What a consent change covers: every message, or marketing templates only (WhatsApp)."""

    ALL = "all"
    MARKETING = "marketing"


@dataclass(frozen=True)
class ConsentChange:
    """The contact opted out of (or back into) messages from this inbox (DESIGN §14): an SMS
    keyword, a Viber (un)subscribe, a Telegram block or restart of the bot."""

    contact_address: str
    opted_out: bool  # False: opted back in
    source: str  # "keyword" or "provider_event" (inbox.models.ConsentEvent.Source)
    detail: str  # the keyword as sent, or the provider's event ("unsubscribed", "kicked")
    occurred_at: datetime
    dedupe_key: str  # unique per contact: the same webhook twice records one event
    scope: str = ConsentScope.ALL
    # The inbound message that carried it (an SMS keyword is also a message the agent sees).
    provider_message_id: str = ""


# Whole-text SMS keywords (trimmed, any case) that carriers and Twilio treat as consent.
SMS_OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
SMS_OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})


def sms_keyword_consent(inbound: InboundMessage) -> ConsentChange | None:
    """The consent an inbound SMS gives when its whole text is a keyword, else None."""
    keyword = inbound.content.strip().upper()
    if keyword in SMS_OPT_OUT_KEYWORDS:
        opted_out = True
    elif keyword in SMS_OPT_IN_KEYWORDS:
        opted_out = False
    else:
        return None
    return ConsentChange(
        contact_address=inbound.contact_address,
        opted_out=opted_out,
        source="keyword",
        detail=keyword,
        occurred_at=inbound.occurred_at,
        dedupe_key=f"inbound:{inbound.provider_message_id}",
        provider_message_id=inbound.provider_message_id,
    )


@dataclass(frozen=True)
class TemplateUpdate:
    """What a WhatsApp template webhook says about one template (DESIGN §13): its new
    ``status``, ``quality_score`` or ``category`` (whichever the field carries; the others
    empty). ``waba_id`` is the entry's id, the business account the template belongs to."""

    field: str  # message_template_status_update, …_quality_update, template_category_update
    waba_id: str
    provider_template_id: str
    name: str = ""
    language: str = ""
    status: str = ""
    reason: str = ""
    quality_score: str = ""
    category: str = ""


class SkipKind(enum.StrEnum):
    """Why an entry of a readable body changed nothing (kept on the delivery, DESIGN §5.1)."""

    MALFORMED = "malformed"  # unreadable entry: skipped, the rest of the body applied
    INVALID_SENDER = "invalid_sender"  # the sender is not an address a reply could go to
    IGNORED = "ignored"  # understood, deliberately not acted on (postback, referral, group…)
    CONSENT = "consent"  # a follow/unfollow Tickmark does not act on (LINE)
    PROVIDER_ERROR = "provider_error"  # an error the provider reports outside any message


@dataclass(frozen=True)
class Skipped:
    """One entry of a body that was recorded but not applied, with the reason."""

    kind: str  # a SkipKind value
    reason: str
    entry: Any = field(default=None, compare=False, hash=False)
    code: str = ""  # PROVIDER_ERROR: the provider's error code

    def as_note(self) -> dict[str, Any]:
        note: dict[str, Any] = {"kind": str(self.kind), "reason": self.reason}
        if self.code:
            note["code"] = self.code
        if self.entry is not None:
            note["entry"] = self.entry
        return note


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def is_e164(address: str) -> bool:
    """Is ``address`` a phone number in E.164 (``+`` and up to 15 digits)? An alphanumeric
    sender id ("MTN", "ACME") or a short code is no address a reply can go to. U+0000 is
    dropped later (ingestion), so it does not count against an address here."""
    return bool(_E164.fullmatch(address.replace("\x00", "")))


@dataclass
class ParseResult:
    statuses: list[StatusUpdate] = field(default_factory=list)
    watermarks: list[Watermark] = field(default_factory=list)
    inbound: list[InboundMessage] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    consents: list[ConsentChange] = field(default_factory=list)
    templates: list[TemplateUpdate] = field(default_factory=list)

    @property
    def applied_count(self) -> int:
        return (
            len(self.statuses)
            + len(self.watermarks)
            + len(self.inbound)
            + len(self.deletions)
            + len(self.consents)
            + len(self.templates)
        )

    def extend(self, other: ParseResult) -> None:
        self.statuses += other.statuses
        self.watermarks += other.watermarks
        self.inbound += other.inbound
        self.deletions += other.deletions
        self.skipped += other.skipped
        self.consents += other.consents
        self.templates += other.templates

    def skip(self, kind: str, reason: str, entry: Any = None, code: str = "") -> None:
        self.skipped.append(Skipped(kind=kind, reason=reason, entry=entry, code=code))

    @contextmanager
    def entry(self, raw: Any, where: str = "") -> Iterator[ParseResult]:
        """Parse one entry of a batched body into a part that joins this result only if the
        whole entry parsed: a ``MalformedPayload`` inside records the entry as malformed (with
        the reason) and the body's other entries are still applied (DESIGN §5.1)."""
        part = ParseResult()
        try:
            yield part
        except MalformedPayload as exc:
            self.skip(SkipKind.MALFORMED, f"{where}: {exc}" if where else str(exc), raw)
            return
        self.extend(part)


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    to: str
    content: str
    template: dict[str, Any] | None
    correlation_id: str  # statuses.correlation.make(...) — echoed back where the provider allows
    status_callback_url: str  # the inbox webhook URL (Twilio/Bandwidth per-message callbacks)
    attempt: int = 1
    subject: str = ""


class SendOutcome(enum.StrEnum):
    ACCEPTED = "accepted"  # the provider took it: status from SendResult.status
    REJECTED = "rejected"  # permanent: failed with the provider's code
    TRANSIENT = "transient"  # 429/5xx/connection refused before sending: retry with backoff
    UNKNOWN = "unknown"  # timed out after the request may have arrived: do not blindly resend


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_message_id: str = ""
    status: str = "sent"
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""
    retry_after: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # The provider said "too many requests" (HTTP 429 or its own code for it): the whole inbox
    # slows down (statuses.sendrate), not just this message.
    rate_limited: bool = False


@dataclass(frozen=True)
class ErrorInfo:
    """A provider error code explained for people."""

    title: str
    explanation: str
    hint: str
    # False when the same message can succeed later: send() retries it, and a manual resend
    # can help (see ``resend_helps``).
    permanent: bool = True
    # The error means the contact opted out (a ``ConsentScope``: Twilio 21610 everything,
    # WhatsApp 131050 marketing only): recording it opts the contact out (DESIGN §14).
    opts_out: str = ""

    @property
    def resend_helps(self) -> bool:
        """Whether sending the same message again may succeed (the agent's Resend button, the
        analytics bulk resend). One flag for both: ``statuses.errors.resend_helps``."""
        return not self.permanent


@dataclass(frozen=True)
class HandshakeReply:
    """A provider's subscription handshake answered without touching any message
    (Meta ``hub.challenge``, LINE's empty ``events`` check, Viber's ``webhook`` event)."""

    status_code: int
    body: bytes = b""
    content_type: str = "text/plain"


# Channels whose statuses never come through the inbox webhook URL (the integrator API, the
# web widget) bind their ``verify``/``handshake``/``parse`` to these.


def refuse_webhook(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Refuse every webhook: this channel's statuses come another way."""
    return False


def no_handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """There is no subscription handshake to answer."""
    return None


def parse_nothing(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Nothing to parse: an empty result."""
    return ParseResult()


@dataclass(frozen=True)
class Channel:
    """One channel type as the domain sees it (DESIGN §4): its family, which statuses it
    reports, and when a message on it is final or expired."""

    channel_type: str
    family: str  # a statuses.catalogue.Family value
    reports_sent: bool
    reports_delivered: bool
    reports_read: bool
    reports_failed: bool
    how: str
    # Free-form messages need an inbound message from the contact within 24 h.
    has_service_window: bool = False
    # How long a message may stay below "delivered" before a sweep marks it expired.
    time_to_live: timedelta = timedelta(days=7)

    @property
    def highest_status(self) -> str:
        if self.reports_read:
            return Status.READ
        if self.reports_delivered:
            return Status.DELIVERED
        return Status.SENT

    def is_terminal(self, status: str) -> bool:
        if status in ALWAYS_TERMINAL:
            return True
        rank = PROGRESS_RANK.get(status)
        return rank is not None and rank >= PROGRESS_RANK[self.highest_status]

    @property
    def capabilities(self) -> dict[str, bool]:
        return {
            "sent": self.reports_sent,
            "delivered": self.reports_delivered,
            "read": self.reports_read,
            "failed": self.reports_failed,
        }


def channel(channel_type: str, family: str, flags: str, how: str, **extra: Any) -> Channel:
    """A ``Channel`` from its reporting flags, ``"YYNY"`` = sent, delivered, read, failed."""
    sent, delivered, read, failed = (flag == "Y" for flag in flags)
    return Channel(channel_type, family, sent, delivered, read, failed, how, **extra)


# ---------------------------------------------------------------------------------------------
# The provider contract: what every package under ``statuses/providers/`` declares in its SPEC.


class Verify(Protocol):
    """Is the webhook signed by the provider? Checked on the raw bytes, before anything else."""

    def __call__(self, request: WebhookRequest, config: dict[str, Any]) -> bool: ...


class Handshake(Protocol):
    """Answer a subscription handshake (no message touched), or None when it is not one."""

    def __call__(
        self, request: WebhookRequest, config: dict[str, Any]
    ) -> HandshakeReply | None: ...


class Parse(Protocol):
    """Turn a verified webhook into provider-neutral dataclasses (``MalformedPayload`` → 400)."""

    def __call__(self, request: WebhookRequest, config: dict[str, Any]) -> ParseResult: ...


class Send(Protocol):
    """Hand one message to the provider and say what happened; never raise for a refusal."""

    def __call__(
        self, client: httpx.Client, config: dict[str, Any], message: OutgoingMessage
    ) -> SendResult: ...


@dataclass(frozen=True)
class ReadMark:
    """Tell the provider that the contact's messages were read by an agent (DESIGN §14).

    ``provider_message_id`` is the newest inbound message read (WhatsApp marks it and every
    earlier one); ``contact_address`` is who wrote them (Messenger/Instagram mark the whole
    thread of that PSID/IGSID seen).
    """

    contact_address: str
    provider_message_id: str


class MarkRead(Protocol):
    """Send the provider's read receipt for an agent's reading; never raise for a refusal.

    ``SendResult.outcome`` says what happened (ACCEPTED, REJECTED, TRANSIENT, UNKNOWN); there is
    no message id to return.
    """

    def __call__(
        self, client: httpx.Client, config: dict[str, Any], mark: ReadMark
    ) -> SendResult: ...


class Reconcile(Protocol):
    """Ask the provider what became of a message whose send outcome is unknown (the sweep of
    ``unknown`` messages): an update, or None when the provider has nothing to say."""

    def __call__(
        self,
        client: httpx.Client,
        config: dict[str, Any],
        provider_message_id: str,
        now: datetime,
    ) -> StatusUpdate | None: ...


@dataclass(frozen=True)
class ConfigSchema:
    """An inbox's ``config`` for one provider (DESIGN §4.1): what the API, the admin's "Add
    inbox" form and the secret masking read."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # Groups of optional keys of which at least one must be set (Twilio: a from number or a
    # messaging service).
    one_of: tuple[tuple[str, ...], ...] = ()
    # Keys never echoed by the API, masked in the admin, never logged.
    secret: frozenset[str] = frozenset()

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key the inbox may hold, required first (the admin form's order)."""
        return (*self.required, *self.optional)


# Optional on every provider Tickmark reaches over HTTP: the API host, for a regional endpoint,
# a proxy or a local fake (checked against the SSRF guard like any tenant-given URL).
BASE_URL_KEY = "api_base_url"


@dataclass(frozen=True)
class ProviderSpec:
    """One provider, declared whole: the registry (``statuses/providers/__init__.py``) maps each
    of its channel types to this, and nothing else in Tickmark names a provider.

    Every field but the optional capability ``mark_read`` is required, so a new provider cannot
    forget one; the registry conformance test
    (``tests/providers/test_registry.py``) checks each against the others and the database.
    """

    name: str
    # The channel types it serves, each with its family and what it reports (statuses.catalogue
    # is the table of all of them, built from the specs).
    channels: tuple[Channel, ...]
    config: ConfigSchema
    # Headers worth keeping with a recorded delivery (lowercase): the signature and what it
    # covers, for a later replay or audit. Credentials (Authorization, tokens) never.
    kept_headers: frozenset[str]
    # Whether repeating a send whose answer was lost cannot deliver the message twice (the
    # provider dedupes, or the "provider" is Tickmark itself): a lost try is then resent rather
    # than marked ``unknown``.
    idempotent_send: bool
    # How long the provider keeps retrying a status webhook we could not match (reference §0):
    # a status parked for an unknown message id becomes ``unmatched`` after that.
    webhook_retry_window: timedelta
    verify: Verify
    handshake: Handshake
    parse: Parse
    send: Send
    # Ask the provider about a message whose outcome is unknown; None if it offers no lookup.
    reconcile: Reconcile | None
    # The provider's error codes explained for people (``statuses.errors`` reads them).
    errors: Mapping[str, ErrorInfo]
    # Tell the provider an agent read the contact's messages (WhatsApp blue ticks, Messenger
    # "seen"); None where the provider has no read receipt for businesses. The one optional
    # capability: most providers have none.
    mark_read: MarkRead | None = None

    @property
    def channel_types(self) -> tuple[str, ...]:
        return tuple(c.channel_type for c in self.channels)


def tokens_equal(given: object, expected: object) -> bool:
    """Compare a shared secret (a token header, a verify token) in constant time; a missing or
    empty side never matches. For providers that authenticate with a token, not a signature."""
    if not isinstance(given, str) or not isinstance(expected, str) or not given or not expected:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )
