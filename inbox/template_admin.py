"""Admin of WhatsApp templates (DESIGN §13): browse with status/category/quality filters, and
"sync now" — from selected templates (their inboxes) or from selected inboxes."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from inbox.exceptions import InboxError
from inbox.models import Inbox, Template
from statuses import templates


def _sync(modeladmin: admin.ModelAdmin, request: HttpRequest, inboxes: Iterable[Inbox]) -> None:
    for inbox in inboxes:
        if inbox.channel_type not in templates.TEMPLATE_CHANNEL_TYPES:
            continue
        try:
            result = templates.templates_sync(inbox=inbox)
        except InboxError as exc:
            modeladmin.message_user(request, f"{inbox.name}: {exc.message}", messages.ERROR)
            continue
        modeladmin.message_user(
            request,
            f"{inbox.name}: {result.synced} templates synced ({result.created} new, "
            f"{result.updated} changed, {result.removed} gone).",
            messages.SUCCESS,
        )


@admin.action(description="Sync WhatsApp templates now")
def sync_templates_now(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet):
    """On inboxes: sync each selected WhatsApp inbox's templates from the provider."""
    _sync(modeladmin, request, queryset)


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "language",
        "inbox",
        "category",
        "status",
        "quality_score",
        "updated_at",
    ]
    list_filter = ["status", "category", "quality_score", "inbox"]
    search_fields = ["name", "provider_template_id"]
    list_select_related = ["inbox"]
    readonly_fields = [
        "account",
        "inbox",
        "provider_template_id",
        "name",
        "language",
        "category",
        "status",
        "rejected_reason",
        "quality_score",
        "components",
        "header_params",
        "body_params",
        "created_at",
        "updated_at",
    ]
    actions = ["sync_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the provider: the API, a sync or a webhook

    @admin.action(description="Sync now (the selected templates' inboxes)")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Template]) -> None:
        ids = queryset.values_list("inbox_id", flat=True).distinct()
        _sync(self, request, Inbox.objects.filter(id__in=list(ids)))
