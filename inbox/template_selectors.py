"""Reads of WhatsApp templates, always scoped to one account (DESIGN §13)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django_filters.utils import translate_validation

from inbox.models import Account, Template
from inbox.selectors import StatusInFilter, parse_id


class TemplateFilter(django_filters.FilterSet):
    inbox = django_filters.UUIDFilter(field_name="inbox_id")
    status = StatusInFilter(
        choices=Template.Status.choices,
        field_name="status",
        lookup_expr="in",
        help_text="One or more, comma-separated.",
    )
    category = django_filters.ChoiceFilter(choices=Template.Category.choices)
    name = django_filters.CharFilter(
        field_name="name", lookup_expr="icontains", max_length=512, help_text="Part of the name."
    )

    class Meta:
        model = Template
        fields: list[str] = []


def template_list(*, account: Account, filters: Any = None) -> QuerySet[Template]:
    filterset = TemplateFilter(filters or {}, Template.objects.filter(account=account))
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs


def template_get(*, account: Account, template_id: Any) -> Template | None:
    pk = parse_id(template_id)
    if pk is None:
        return None
    return Template.objects.select_related("inbox").filter(account=account, pk=pk).first()


def templates_for_compose(*, inbox_id: Any) -> list[Template]:
    """An inbox's templates an agent may see in the picker (deleted ones are gone)."""
    return list(
        Template.objects.filter(inbox_id=inbox_id)
        .exclude(status__in=[Template.Status.DELETED, Template.Status.PENDING_DELETION])
        .order_by("name", "language")
    )
