from django import forms
from django.contrib import admin

from statuses import netguard
from statuses.models import (
    OutgoingAttempt,
    OutgoingEvent,
    ParkedEvent,
    SendTry,
    StatusEvent,
    WebhookDelivery,
    WebhookSubscription,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StatusEvent)
class StatusEventAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "message_id",
        "status",
        "raw_status",
        "source",
        "outcome",
        "error_code",
        "duplicate_count",
    ]
    list_filter = ["status", "source", "outcome", "inbox__channel_type"]
    search_fields = ["=provider_message_id", "=message__id", "dedupe_key"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(ParkedEvent)
class ParkedEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "inbox", "provider_message_id", "raw_status", "outcome"]
    list_filter = ["outcome", "inbox__channel_type"]
    search_fields = ["=provider_message_id", "correlation_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(message__isnull=True)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "channel_type",
        "inbox",
        "verdict",
        "http_status",
        "status_count",
    ]
    list_filter = ["verdict", "channel_type", "received_at"]
    search_fields = ["=inbox__id", "detail"]
    exclude = ["body"]
    readonly_fields = ["body_text"]
    show_full_result_count = False


class OutgoingAttemptInline(admin.TabularInline):
    model = OutgoingAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["attempted_at", "http_status", "error", "duration_ms"]
    exclude = ["response_body"]

    def has_add_permission(self, request, obj=None):
        return False


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookSubscription
        fields = ["account", "url", "events", "is_active", "disabled_reason", "failing_since"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            netguard.check_url(url)
        except netguard.BlockedAddress as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["url", "account", "is_active", "disabled_reason", "created_at"]
    list_filter = ["is_active", "account"]
    exclude = ["secret"]


@admin.register(OutgoingEvent)
class OutgoingEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event_type", "subscription", "state", "attempts"]
    list_filter = ["state", "event_type"]
    inlines = [OutgoingAttemptInline]


@admin.register(SendTry)
class SendTryAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "message_id",
        "attempt",
        "number",
        "outcome",
        "error_code",
        "retry_at",
        "worker",
    ]
    list_filter = ["outcome", "message__channel_type"]
    search_fields = ["=message__id", "=provider_message_id"]
    raw_id_fields = ["message"]
