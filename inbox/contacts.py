"""Reads of contacts for the API (DESIGN §14): the account's contacts, filtered, and one."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django_filters.utils import translate_validation

from inbox.models import Account, ConsentEvent, Contact
from inbox.selectors import parse_id


class ContactFilter(django_filters.FilterSet):
    inbox = django_filters.UUIDFilter(field_name="inbox_id")
    # ``true`` or ``false``; anything else is a 400 (not silently "no filter").
    opted_out = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true"
    )
    q = django_filters.CharFilter(method="filter_q", max_length=200)

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_q(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Part of the name or of the address (a phone number, a chat id), any case."""
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))


def contact_list(*, account: Account, filters: Any = None) -> QuerySet[Contact]:
    """The account's contacts; the caller paginates."""
    filterset = ContactFilter(filters or {}, Contact.objects.filter(account=account))
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs


def contact_get(*, account: Account, contact_id: Any) -> Contact | None:
    pk = parse_id(contact_id)
    return None if pk is None else Contact.objects.filter(account=account, pk=pk).first()


def contact_consent_events(*, contact: Contact, limit: int = 50) -> list[ConsentEvent]:
    """The contact's newest consent changes, newest first."""
    return list(
        ConsentEvent.objects.filter(contact=contact).order_by("-occurred_at", "-id")[:limit]
    )
