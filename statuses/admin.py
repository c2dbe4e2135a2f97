import json

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from inbox.models import ParkedDeletion
from statuses import netguard, outgoing
from statuses.models import (
    OutgoingAttempt,
    OutgoingEvent,
    ParkedEvent,
    ReadReceipt,
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
        "message_link",
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

    @admin.display(description="Message", ordering="message_id")
    def message_link(self, obj: StatusEvent) -> str:
        if not obj.message_id:
            return "—"
        url = reverse("admin:inbox_message_change", args=[obj.message_id])
        return format_html('<a href="{}"><code>{}</code></a>', url, str(obj.message_id)[:8])


@admin.register(ParkedEvent)
class ParkedEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "inbox", "provider_message_id", "raw_status", "outcome"]
    list_filter = ["outcome", "inbox__channel_type"]
    search_fields = ["=provider_message_id", "correlation_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(message__isnull=True)


@admin.register(ParkedDeletion)
class ParkedDeletionAdmin(ReadOnlyAdmin):
    """Contacts' deletions waiting for the message they delete (applied when it arrives)."""

    list_display = ["received_at", "inbox", "provider_message_id", "contact_address"]
    search_fields = ["=provider_message_id", "contact_address"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "channel_type",
        "inbox",
        "verdict",
        "http_status",
        "status_count",
        "detail",
    ]
    list_filter = ["verdict", "channel_type", "received_at"]
    search_fields = ["=inbox__id", "detail"]
    exclude = ["body", "notes"]
    readonly_fields = ["skipped_entries", "body_text"]
    show_full_result_count = False

    @admin.display(description="Skipped entries (recorded, not applied)")
    def skipped_entries(self, obj: WebhookDelivery) -> str:
        """Each entry the body had but Tickmark did not apply, with the reason (issue #9)."""
        if not obj.notes:
            return "—"
        rows = format_html_join(
            "",
            "<li><strong>{}</strong>{}: {}<pre>{}</pre></li>",
            (
                (
                    note.get("kind", ""),
                    f" {note['code']}" if note.get("code") else "",
                    note.get("reason", ""),
                    json.dumps(note.get("entry"), indent=2, ensure_ascii=False)[:4000]
                    if note.get("entry") is not None
                    else "",
                )
                for note in obj.notes
            ),
        )
        return format_html("<ul>{}</ul>", rows)


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

    # Through the service: safe while deliveries and status changes are in flight.
    def delete_model(self, request, obj):
        outgoing.subscription_delete(subscription=obj)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            outgoing.subscription_delete(subscription=subscription)


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


@admin.register(ReadReceipt)
class ReadReceiptAdmin(ReadOnlyAdmin):
    """Read receipts owed to providers (DESIGN §14): what went, what was retried or given up."""

    list_display = [
        "created_at",
        "inbox",
        "message_id",
        "covers",
        "state",
        "tries",
        "error_code",
        "next_try_at",
        "finished_at",
    ]
    list_filter = ["state", "inbox__channel_type"]
    search_fields = ["=message__id", "=message__provider_message_id"]
    raw_id_fields = ["message", "inbox"]
