from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from inbox.api.serializers import validate_config
from inbox.exceptions import CampaignStateConflict
from inbox.models import (
    SECRET_CONFIG_KEYS,
    Account,
    ApiKey,
    Campaign,
    CampaignCount,
    Contact,
    Conversation,
    Inbox,
    Membership,
    Message,
)
from statuses import providers
from statuses.campaigns import lifecycle
from statuses.catalogue import ChannelType
from statuses.models import StatusEvent


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role"]
    list_filter = ["role", "account"]
    search_fields = ["user__username", "account__name"]
    autocomplete_fields = ["account"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "account", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["account"]
    search_fields = ["prefix", "name", "account__name"]
    fields = ["account", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            raw_key = ApiKey.generate()
            obj.set_key(raw_key)
            super().save_model(request, obj, form, change)
            # Shown exactly once: only the hash is stored.
            messages.warning(
                request, f"Copy this API key now, it will not be shown again: {raw_key}"
            )
        else:
            super().save_model(request, obj, form, change)


def _config_fields(channel_type: str) -> list[str]:
    return list(providers.get(channel_type).config.keys)


class InboxAdminForm(forms.ModelForm):
    """The inbox with its channel's credentials as fields (secrets write-only, never shown).

    The credential fields depend on the channel type: on "Add inbox" pick the type first; the
    form then asks for exactly that channel's settings (DESIGN §4.1).
    """

    class Meta:
        model = Inbox
        fields = ["account", "name", "channel_type"]

    def __init__(self, *args: Any, channel_type: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_type = channel_type if channel_type in ChannelType.values else ""
        if not self.instance._state.adding:
            self.fields["channel_type"].disabled = True
        if not self.channel_type:
            return
        required = providers.get(self.channel_type).config.required
        current = {} if self.instance._state.adding else self.instance.config
        # Just picked the channel type: ask for its credentials once, not field by field.
        self.awaiting_credentials = (
            self.is_bound
            and self.instance._state.adding
            and not any(name.startswith("config__") for name in self.data)
        )
        if self.awaiting_credentials:
            required = ()
        for key in _config_fields(self.channel_type):
            label = key.replace("_", " ").capitalize()
            if key in SECRET_CONFIG_KEYS:
                has_value = bool(current.get(key))
                field: forms.Field = forms.CharField(
                    label=label,
                    required=key in required and not has_value,
                    widget=forms.PasswordInput(render_value=False),
                    help_text="Set — leave blank to keep it." if has_value else "Secret.",
                )
            elif key == "smtp_use_tls":
                field = forms.BooleanField(label=label, required=False)
            elif key == "smtp_port":
                field = forms.IntegerField(label=label, min_value=1, max_value=65535)
            else:
                field = forms.CharField(label=label, required=key in required)
            if key in current and key not in SECRET_CONFIG_KEYS:
                field.initial = current[key]
            self.fields[f"config__{key}"] = field

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        chosen = data.get("channel_type") or self.instance.channel_type
        if self.instance._state.adding and chosen and chosen != self.channel_type:
            raise forms.ValidationError("Pick the channel type again.")
        if not self.channel_type:
            return data
        if getattr(self, "awaiting_credentials", False):
            raise forms.ValidationError(
                f"Now fill in the {ChannelType(self.channel_type).label} credentials below."
            )
        from rest_framework import serializers as drf

        config = {} if self.instance._state.adding else dict(self.instance.config)
        for key in _config_fields(self.channel_type):
            value = data.get(f"config__{key}")
            if value in (None, "") and key in config and f"config__{key}" in self.fields:
                if isinstance(self.fields[f"config__{key}"].widget, forms.PasswordInput):
                    continue  # blank secret: keep the stored one
                config.pop(key)
            elif value not in (None, "", False) or key == "smtp_use_tls":
                config[key] = value
        try:
            self.instance.config = validate_config(self.channel_type, config)
        except drf.ValidationError as exc:
            detail = exc.detail.get("config", {}) if isinstance(exc.detail, dict) else {}
            for key, message in detail.items():
                name = f"config__{key}"
                if name in self.errors:
                    continue  # already says "This field is required."
                self.add_error(name if name in self.fields else None, str(message))
        return data


@admin.register(Inbox)
class InboxAdmin(admin.ModelAdmin):
    form = InboxAdminForm
    list_display = ["name", "channel_type", "account", "created_at"]
    list_filter = ["channel_type", "account"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "webhook_url_shown", "config_masked"]

    @staticmethod
    def _channel_type(request: HttpRequest, obj: Inbox | None) -> str:
        if obj is not None:
            return obj.channel_type
        chosen = request.POST.get("channel_type") or request.GET.get("channel_type", "")
        return chosen if chosen in ChannelType.values else ""

    def get_form(self, request: HttpRequest, obj: Inbox | None = None, **kwargs: Any) -> Any:
        # The model fields only: the credential fields are added per channel by the form.
        kwargs["fields"] = ["account", "name", "channel_type"]
        form = super().get_form(request, obj, **kwargs)
        channel_type = self._channel_type(request, obj)

        class BoundForm(form):  # the channel type decides the credential fields
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, channel_type=channel_type, **kw)

        return BoundForm

    def get_fieldsets(self, request: HttpRequest, obj: Inbox | None = None) -> Any:
        channel_type = self._channel_type(request, obj)
        config = [f"config__{key}" for key in _config_fields(channel_type)] if channel_type else []
        fieldsets: list[Any] = [(None, {"fields": ["account", "name", "channel_type"]})]
        if config:
            fieldsets.append(("Channel credentials", {"fields": config}))
        else:
            fieldsets.append(
                (
                    "Channel credentials",
                    {
                        "fields": [],
                        "description": "Pick the channel type and save: the form "
                        "then asks for that channel's credentials.",
                    },
                )
            )
        if obj is not None:
            fieldsets.append(("Webhook", {"fields": ["id", "webhook_url_shown", "config_masked"]}))
        return fieldsets

    @admin.display(description="Webhook URL")
    def webhook_url_shown(self, obj: Inbox) -> str:
        # Never "webhooks//": the URL exists once the inbox (and its channel type) is saved.
        if obj is None or obj._state.adding or not obj.channel_type:
            return "Shown once the inbox is saved."
        return obj.webhook_url

    @admin.display(description="Config (secrets masked)")
    def config_masked(self, obj):
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", obj.masked_config().items())
        return format_html("<table>{}</table>", rows) if rows else "—"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["address", "name", "inbox", "last_inbound_at"]
    list_filter = ["inbox__channel_type"]
    search_fields = ["address", "name"]
    exclude = ["token"]
    raw_id_fields = ["inbox", "account"]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "direction", "content", "status", "error_code", "attempt"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["contact", "inbox", "last_message_at", "unread_count"]
    list_filter = ["inbox__channel_type", "inbox"]
    search_fields = ["contact__address", "contact__name"]
    inlines = [MessageInline]
    raw_id_fields = ["contact", "inbox", "account"]
    list_select_related = ["contact", "inbox"]


class StatusEventInline(admin.TabularInline):
    model = StatusEvent
    fk_name = "message"
    fields = [
        "occurred_at",
        "received_at",
        "attempt",
        "status",
        "raw_status",
        "source",
        "outcome",
        "error_code",
        "error_title",
        "duplicate_count",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["occurred_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages are created and changed only through the send pipeline (UI, API, campaigns):
    the admin shows them, never adds or edits them (a row added here would never be sent)."""

    list_display = [
        "short_id",
        "created_at",
        "direction",
        "contact",
        "text",
        "channel_type",
        "status",
        "error_code",
        "attempt",
    ]
    list_display_links = ["short_id"]
    list_filter = ["status", "channel_type", "direction", "inbox", "created_at"]
    search_fields = [
        "=id",
        "=provider_message_id",
        "=customer_message_id",
        "to_address",
        "content",
        "conversation__contact__name",
        "conversation__contact__address",
    ]
    date_hierarchy = "created_at"
    inlines = [StatusEventInline]
    list_select_related = ["inbox", "conversation__contact"]
    show_full_result_count = False

    _LIFECYCLE = [
        "provider_message_id",
        "attempt",
        "queued_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "status_updated_at",
        "error_code",
        "error_title",
        "error_detail",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False  # read-only: the view page still shows everything

    def get_fields(self, request: HttpRequest, obj: Message | None = None) -> list[str]:
        base = [
            "id",
            "account",
            "inbox",
            "conversation",
            "direction",
            "channel_type",
            "to_address",
            "sender",
            "content",
            "template",
            "customer_message_id",
            "created_at",
            "status",
            "version",
        ]
        fields = [f for f in base if hasattr(Message, f)]
        if obj is not None and obj.direction == Message.Direction.INCOMING:
            # A message the contact sent has no queue, send or delivery lifecycle of ours.
            return [*fields, "provider_message_id"]
        return [*fields, *[f for f in self._LIFECYCLE if hasattr(Message, f)]]

    def get_inlines(self, request: HttpRequest, obj: Message | None = None) -> list[Any]:
        if obj is not None and obj.direction == Message.Direction.INCOMING:
            return []
        return super().get_inlines(request, obj)

    @admin.display(description="ID", ordering="id")
    def short_id(self, obj: Message) -> str:
        return format_html('<code title="{}">{}</code>', obj.id, str(obj.id)[:8])

    @admin.display(description="Contact", ordering="conversation__contact__name")
    def contact(self, obj: Message) -> str:
        return str(obj.conversation.contact) if obj.conversation_id else obj.to_address

    @admin.display(description="Text")
    def text(self, obj: Message) -> str:
        if obj.template:
            return f"Template {obj.template.get('name', '')}"
        return Truncator(obj.content).chars(60)


# ---------------------------------------------------------------------------------------------
# Campaigns (created through the API; the admin shows them with their counts and can pause,
# resume or cancel them)
# ---------------------------------------------------------------------------------------------


def _count_of(status: str):
    """A campaign's count of messages in ``status``: the sum of its count rows (a subquery)."""
    rows = (
        CampaignCount.objects.filter(campaign=OuterRef("pk"), status=status)
        .values("campaign")
        .annotate(n=Sum("delta"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


CAMPAIGN_COUNTED = ("queued", "sent", "delivered", "read", "failed")


def _campaign_action(name: str, verb: str):
    def act(modeladmin, request: HttpRequest, queryset) -> None:
        done = 0
        for campaign in queryset:
            try:
                getattr(lifecycle, f"campaign_{name}")(campaign=campaign)
                done += 1
            except CampaignStateConflict as exc:
                modeladmin.message_user(request, f"{campaign}: {exc.message}", messages.WARNING)
        modeladmin.message_user(request, f"{done} campaign(s) {verb}.")

    act.__name__ = f"campaign_{name}"
    act.short_description = f"{name.capitalize()} the selected campaigns"  # type: ignore[attr-defined]
    return act


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "inbox",
        "status",
        "total",
        "materialised",
        "rejected",
        *(f"n_{status}" for status in CAMPAIGN_COUNTED),
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "inbox"]
    search_fields = ["name", "=id"]
    list_select_related = ["inbox"]
    date_hierarchy = "created_at"
    actions = [
        _campaign_action("pause", "paused"),
        _campaign_action("resume", "resumed"),
        _campaign_action("cancel", "cancelled"),
    ]
    readonly_fields = [
        "account",
        "inbox",
        "status",
        "total",
        "rejected",
        "materialised",
        "materialised_at",
        "content",
        "template",
        "scheduled_at",
        "started_at",
        "completed_at",
        "created_at",
    ]

    def get_queryset(self, request: HttpRequest):
        counts = {f"n_{status}": _count_of(status) for status in CAMPAIGN_COUNTED}
        return super().get_queryset(request).annotate(**counts)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns are created through the API (recipients checked there)

    @admin.display(description="Queued", ordering="n_queued")
    def n_queued(self, obj: Campaign) -> int:
        return obj.n_queued

    @admin.display(description="Sent", ordering="n_sent")
    def n_sent(self, obj: Campaign) -> int:
        return obj.n_sent

    @admin.display(description="Delivered", ordering="n_delivered")
    def n_delivered(self, obj: Campaign) -> int:
        return obj.n_delivered

    @admin.display(description="Read", ordering="n_read")
    def n_read(self, obj: Campaign) -> int:
        return obj.n_read

    @admin.display(description="Failed", ordering="n_failed")
    def n_failed(self, obj: Campaign) -> int:
        return obj.n_failed
