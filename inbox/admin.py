from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from inbox.models import Account, ApiKey, Contact, Conversation, Inbox, Membership, Message
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


@admin.register(Inbox)
class InboxAdmin(admin.ModelAdmin):
    list_display = ["name", "channel_type", "account", "created_at"]
    list_filter = ["channel_type", "account"]
    search_fields = ["name", "id"]
    readonly_fields = ["id", "webhook_url", "config_masked"]
    exclude = ["config"]

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
    list_display = [
        "id",
        "direction",
        "channel_type",
        "to_address",
        "status",
        "error_code",
        "attempt",
        "created_at",
    ]
    list_filter = ["status", "channel_type", "direction", "inbox", "created_at"]
    search_fields = ["=id", "=provider_message_id", "=customer_message_id", "to_address"]
    date_hierarchy = "created_at"
    inlines = [StatusEventInline]
    raw_id_fields = ["conversation", "inbox", "account", "sender"]
    readonly_fields = [
        "id",
        "status",
        "version",
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
    list_select_related = ["inbox"]
    show_full_result_count = False
