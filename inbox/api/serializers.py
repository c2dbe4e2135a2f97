"""Input and output shapes of the REST API (DESIGN §7). Statuses are shown UPPERCASE."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from django.core.validators import URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from inbox import addresses, caches
from inbox.models import MAX_SEND_RATE, SECRET_CONFIG_KEYS, Conversation, Inbox, Message
from inbox.representation import error_of, message_representation
from statuses import netguard, providers, sendrate
from statuses.catalogue import CHANNELS, ChannelType, Family
from statuses.machine import Status, Tick
from statuses.models import OutgoingAttempt, StatusEvent, WebhookSubscription
from statuses.read_receipts import Receipt

STATUS_VALUES = [s.upper() for s in Status.values]
REPORTABLE_STATUSES = ["DELIVERED", "READ", "FAILED"]


def upper_status(value: str) -> str | None:
    return value.upper() if value else None


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Provider or Tickmark error code.")
    title = serializers.CharField()
    detail = serializers.CharField(help_text="The provider's own words.")
    hint = serializers.CharField(allow_null=True, help_text="What to do about it.")


@extend_schema_field(serializers.ChoiceField(choices=Family.choices))
class FamilyField(serializers.ReadOnlyField):
    """The channel family (``WHATSAPP``, ``SMS``, …) found at ``source``."""


# ---------------------------------------------------------------------------------------------
# Inboxes
# ---------------------------------------------------------------------------------------------

_URL = URLValidator(schemes=["http", "https"])


def validate_config(channel_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check a complete inbox config against DESIGN §4.1; raise naming the first bad key."""
    schema = providers.get(channel_type).config
    required, one_of, allowed = schema.required, schema.one_of, set(schema.keys)
    errors: dict[str, str] = {}
    for key in required:
        value = config.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[key] = f"Required for {channel_type} inboxes."
    for group in one_of:
        if not any(config.get(key) for key in group):
            errors[group[0]] = f"One of {' or '.join(group)} is required for {channel_type}."
    for key, value in config.items():
        if key not in allowed:
            errors[key] = f"Unknown key for {channel_type} (allowed: {', '.join(sorted(allowed))})."
        elif key == "smtp_port":
            if isinstance(value, bool) or not (
                (isinstance(value, int) and 0 < value < 65536)
                or (isinstance(value, str) and value.isdigit() and 0 < int(value) < 65536)
            ):
                errors[key] = "A TCP port number (1-65535)."
        elif key == "smtp_use_tls":
            if not isinstance(value, bool):
                errors[key] = "true or false."
        elif not isinstance(value, str):
            errors[key] = "Must be a string."
        elif key in ("api_base_url", "webhook_url"):
            try:
                _URL(value)
            except Exception:
                errors[key] = "An http(s) URL."
            else:
                errors.update(_refused_target(key, value, netguard.check_url))
        elif key == "smtp_host":
            if not netguard.is_host(value):
                errors[key] = "A host name or IP address (the port goes in smtp_port)."
            else:
                errors.update(_refused_target(key, value, netguard.check_host))
    if errors:
        raise serializers.ValidationError({"config": errors})
    return config


def _refused_target(key: str, value: str, check: Callable[[str], None]) -> dict[str, str]:
    """``{key: reason}`` when ``value`` points at an address Tickmark must not connect to."""
    try:
        check(value)
    except netguard.BlockedAddress as exc:
        return {key: str(exc)}
    return {}


READ_RECEIPTS_HELP = (
    "Tell the provider when an agent has read the contact's messages (WhatsApp, Messenger, "
    "Instagram; DESIGN §14). Default true."
)


class InboxSerializer(serializers.ModelSerializer):
    channel = FamilyField(source="family", help_text="The channel family (DESIGN §4).")
    config = serializers.SerializerMethodField(help_text="Public settings; secrets never shown.")
    secrets_set = serializers.SerializerMethodField(
        help_text="Names of the secret config keys that hold a value (the values are write-only)."
    )
    webhook_url = serializers.CharField(
        read_only=True, help_text="Where the provider must send its status webhooks."
    )
    capabilities = serializers.SerializerMethodField(
        help_text="Which statuses this channel reports back."
    )
    max_send_rate = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Messages per second set for this inbox."
    )
    send_rate = serializers.SerializerMethodField(
        help_text="Messages per second the workers keep to: max_send_rate, or the channel's "
        "default from the provider's documented limit; null: not paced."
    )

    class Meta:
        model = Inbox
        fields = [
            "id",
            "name",
            "channel_type",
            "channel",
            "config",
            "secrets_set",
            "webhook_url",
            "capabilities",
            "send_read_receipts",
            "max_send_rate",
            "send_rate",
            "created_at",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_config(self, inbox: Inbox) -> dict[str, Any]:
        return inbox.public_config()

    def get_secrets_set(self, inbox: Inbox) -> list[str]:
        return sorted(k for k, v in inbox.config.items() if k in SECRET_CONFIG_KEYS and v)

    @extend_schema_field(
        inline_serializer(
            "Capabilities",
            {name: serializers.BooleanField() for name in ("sent", "delivered", "read", "failed")},
        )
    )
    def get_capabilities(self, inbox: Inbox) -> dict[str, bool]:
        return CHANNELS[inbox.channel_type].capabilities

    def get_send_rate(self, inbox: Inbox) -> float | None:
        return sendrate.rate_of(inbox)


def max_send_rate_field(**kwargs: Any) -> serializers.FloatField:
    return serializers.FloatField(
        min_value=0.001,
        max_value=MAX_SEND_RATE,
        allow_null=True,
        help_text="Messages per second the workers together may send; null: the channel's "
        "default (the provider's documented limit).",
        **kwargs,
    )


class InboxCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    channel_type = serializers.ChoiceField(choices=ChannelType.choices)
    config = serializers.DictField(
        child=serializers.JSONField(),
        default=dict,
        help_text="Per channel type, DESIGN §4.1. Secrets are write-only.",
    )
    send_read_receipts = serializers.BooleanField(default=True, help_text=READ_RECEIPTS_HELP)
    max_send_rate = max_send_rate_field(default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        validate_config(attrs["channel_type"], attrs["config"])
        return attrs


class InboxUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    config = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        help_text="Merged into the current config; a key set to null is removed.",
    )
    send_read_receipts = serializers.BooleanField(required=False, help_text=READ_RECEIPTS_HELP)
    max_send_rate = max_send_rate_field(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        inbox: Inbox = self.context["inbox"]
        if "config" in attrs:
            merged = {**inbox.config, **attrs["config"]}
            merged = {k: v for k, v in merged.items() if v is not None}
            attrs["config"] = validate_config(inbox.channel_type, merged)
        return attrs


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


class MessageSerializer(serializers.ModelSerializer):
    """The message as every endpoint and every outgoing webhook shows it."""

    inbox = serializers.UUIDField(source="inbox_id", read_only=True)
    channel = FamilyField(source="family")
    conversation = serializers.IntegerField(source="conversation_id", read_only=True)
    to = serializers.CharField(source="to_address", read_only=True)
    status = serializers.SerializerMethodField()
    tick = serializers.SerializerMethodField()
    is_terminal = serializers.SerializerMethodField(
        help_text="True when no further status can come (DESIGN §3.4); stop polling."
    )
    error = serializers.SerializerMethodField()
    read_by_agent_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="Inbound messages: when an agent first read it (the provider was then told, "
        "where it takes read receipts). Always null for outgoing messages.",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "customer_message_id",
            "provider_message_id",
            "inbox",
            "channel",
            "channel_type",
            "conversation",
            "direction",
            "to",
            "content",
            "status",
            "tick",
            "is_terminal",
            "error",
            "attempt",
            "queued_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "status_updated_at",
            "created_at",
            "read_by_agent_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=STATUS_VALUES))
    def get_status(self, message: Message) -> str:
        return message.status.upper()

    @extend_schema_field(serializers.ChoiceField(choices=Tick.values))
    def get_tick(self, message: Message) -> str:
        return message.tick

    def get_is_terminal(self, message: Message) -> bool:
        return message.is_terminal

    @extend_schema_field(ErrorSerializer(allow_null=True))
    def get_error(self, message: Message) -> dict[str, Any] | None:
        return error_of(
            message.channel_type, message.error_code, message.error_title, message.error_detail
        )

    def to_representation(self, instance: Message) -> dict[str, Any]:
        # The fields above describe the shape (OpenAPI); the one function builds it.
        return message_representation(instance)


class MessageStatusSerializer(serializers.Serializer):
    message_status = serializers.ChoiceField(choices=STATUS_VALUES)
    updated_at = serializers.DateTimeField()


class ChannelMessageSerializer(MessageSerializer):
    """A message in the per-channel views, with the ``message_status`` block."""

    message_status = serializers.SerializerMethodField()

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "message_status"]
        read_only_fields = fields

    def to_representation(self, instance: Message) -> dict[str, Any]:
        message_status = self.get_message_status(instance)
        return {**super().to_representation(instance), "message_status": message_status}

    @extend_schema_field(MessageStatusSerializer)
    def get_message_status(self, message: Message) -> dict[str, Any]:
        return {
            "message_status": message.status.upper(),
            "updated_at": serializers.DateTimeField().to_representation(message.status_updated_at),
        }


class MessageCreateSerializer(serializers.Serializer):
    inbox = serializers.UUIDField()
    to = serializers.CharField(
        max_length=addresses.MAX_LENGTH,
        help_text="E.164 phone for WhatsApp and SMS; provider user id; email address; …",
    )
    content = serializers.CharField(required=False, allow_blank=False, max_length=65536)
    template = serializers.DictField(
        required=False,
        help_text="An approved template (WhatsApp: {name, language, parameters?: {header?, "
        "body?} | components?}).",
    )
    customer_message_id = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Your own id: repeating it returns the existing message instead of a new one.",
    )

    def validate_inbox(self, value):
        inbox = caches.inbox_get(account=self.context["account"], inbox_id=value)
        if inbox is None:
            raise serializers.ValidationError("No such inbox.")
        return inbox

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("content" in attrs) == ("template" in attrs):
            raise serializers.ValidationError({"content": "Give either content or template."})
        to = attrs["to"].strip()
        # The field itself refuses a blank or too long ``to``, in DRF's words.
        problem = addresses.address_problem(attrs["inbox"].family, to)
        if problem:
            raise serializers.ValidationError({"to": problem})
        attrs["to"] = to
        return attrs


class StatusReportErrorSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    detail = serializers.CharField(required=False, allow_blank=True, default="")


class StatusReportSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=REPORTABLE_STATUSES)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="When it happened on your side (default: now)."
    )
    error = StatusReportErrorSerializer(required=False, help_text="For FAILED: why.")

    def validate_occurred_at(self, value):
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise serializers.ValidationError("Date-time out of range.") from exc


class StatusEventSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="Normalized status (null when the provider's status is not recognised)."
    )
    error = serializers.SerializerMethodField()

    class Meta:
        model = StatusEvent
        fields = [
            "id",
            "status",
            "raw_status",
            "occurred_at",
            "received_at",
            "source",
            "outcome",
            "attempt",
            "error",
            "duplicate_count",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=STATUS_VALUES, allow_null=True))
    def get_status(self, event: StatusEvent) -> str | None:
        return upper_status(event.status)

    @extend_schema_field(ErrorSerializer(allow_null=True))
    def get_error(self, event: StatusEvent) -> dict[str, Any] | None:
        channel_type = self.context.get("channel_type", "")
        return error_of(channel_type, event.error_code, event.error_title, event.error_detail)


# ---------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------


class ContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    address = serializers.CharField()
    name = serializers.CharField()


class ConversationSerializer(serializers.ModelSerializer):
    inbox = serializers.UUIDField(source="inbox_id", read_only=True)
    channel_type = serializers.CharField(source="inbox.channel_type", read_only=True)
    channel = FamilyField(source="inbox.family")
    contact = ContactSerializer(read_only=True)
    service_window_open = serializers.SerializerMethodField(
        help_text="Free-form messages allowed now (WhatsApp/Messenger/Instagram 24-hour window)."
    )

    class Meta:
        model = Conversation
        fields = [
            "id",
            "inbox",
            "channel",
            "channel_type",
            "contact",
            "last_message_at",
            "last_inbound_at",
            "unread_count",
            "service_window_open",
            "created_at",
        ]
        read_only_fields = fields

    def get_service_window_open(self, conversation: Conversation) -> bool:
        if not CHANNELS[conversation.inbox.channel_type].has_service_window:
            return True
        return conversation.service_window_open()


class ConversationReadSerializer(serializers.Serializer):
    """The answer to ``POST /api/v1/conversations/<id>/read``."""

    conversation = serializers.IntegerField()
    marked_read = serializers.IntegerField(
        help_text="Inbound messages this call marked read (0 when an agent already had)."
    )
    read_receipt = serializers.ChoiceField(
        choices=[receipt.value for receipt in Receipt],
        help_text="queued: one read receipt goes to the provider; none: nothing new was read; "
        "off: the inbox's send_read_receipts is false; unsupported: the channel takes none.",
    )


# ---------------------------------------------------------------------------------------------
# Outgoing webhooks
# ---------------------------------------------------------------------------------------------


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "url",
            "events",
            "is_active",
            "disabled_reason",
            "failing_since",
            "created_at",
        ]
        read_only_fields = fields


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Signing secret for X-Tickmark-Signature. Shown only once."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookSubscription.EventType.values),
        allow_empty=False,
        default=list(WebhookSubscription.EventType.values),
    )

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("An http(s) URL.")
        try:
            netguard.check_url(value)
        except netguard.BlockedAddress as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class WebhookAttemptSerializer(serializers.ModelSerializer):
    event_id = serializers.IntegerField(source="event.id", read_only=True)
    event_type = serializers.CharField(source="event.event_type", read_only=True)
    message = serializers.UUIDField(source="event.message_id", read_only=True, allow_null=True)
    event_state = serializers.ChoiceField(
        source="event.state", choices=["pending", "delivered", "failed"], read_only=True
    )
    next_attempt_at = serializers.DateTimeField(source="event.next_attempt_at", read_only=True)
    response_body = serializers.SerializerMethodField(
        help_text="Always empty: the receiver's answer is never stored nor shown (only its "
        "`http_status` and a short `error`), so a URL cannot be used to read other services."
    )

    class Meta:
        model = OutgoingAttempt
        fields = [
            "id",
            "event_id",
            "event_type",
            "message",
            "attempted_at",
            "http_status",
            "error",
            "duration_ms",
            "response_body",
            "event_state",
            "next_attempt_at",
        ]
        read_only_fields = fields

    def get_response_body(self, attempt: OutgoingAttempt) -> str:
        return ""
