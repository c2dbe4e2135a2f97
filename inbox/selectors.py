"""Reads of inbox objects for the API, always scoped to one account (HackSoft selectors).

An object of another account is indistinguishable from a missing one: every getter filters by
account and returns ``None`` for both, and malformed ids are "not found" rather than errors.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC
from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.utils import translate_validation

from inbox import rowsql
from inbox.models import Account, Campaign, Conversation, Inbox, Message
from statuses.catalogue import CHANNELS, ChannelType, Family, channel_types_of
from statuses.machine import Status
from statuses.models import OutgoingAttempt, StatusEvent, WebhookSubscription

MAX_BIGINT = 2**63 - 1


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def parse_id(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_BIGINT else None


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------


class _SafeDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO-8601 date-time that also fits in the database once converted to UTC."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is not None:
            try:
                # Handed to the database in UTC: PostgreSQL refuses offsets beyond ±15:59.
                result = result.astimezone(UTC)
            except OverflowError as exc:
                raise forms.ValidationError("Date-time out of range.", code="invalid") from exc
        return result


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _SafeDateTimeField


class IdFilter(django_filters.Filter):
    field_class = forms.IntegerField


class StatusInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    pass


STATUS_CHOICES = [(value.upper(), label) for value, label in Status.choices]


def terminal_q() -> Q:
    """Q for ``is_terminal`` (DESIGN §3.4): one ``status IN`` per group of channel types."""
    by_statuses: dict[frozenset[str], list[str]] = defaultdict(list)
    for channel_type, channel in CHANNELS.items():
        statuses = frozenset(s for s in Status.values if channel.is_terminal(s))
        by_statuses[statuses].append(channel_type)
    q = Q()
    for statuses, channel_types in by_statuses.items():
        q |= Q(channel_type__in=sorted(channel_types), status__in=sorted(statuses))
    return q


class MessageFilter(django_filters.FilterSet):
    status = StatusInFilter(
        choices=STATUS_CHOICES, method="filter_status", help_text="One or more, comma-separated."
    )
    channel = django_filters.ChoiceFilter(choices=Family.choices, method="filter_channel")
    channel_type = django_filters.ChoiceFilter(choices=ChannelType.choices)
    inbox = django_filters.UUIDFilter(field_name="inbox_id")
    conversation = IdFilter(field_name="conversation_id", min_value=1, max_value=MAX_BIGINT)
    direction = django_filters.ChoiceFilter(choices=Message.Direction.choices)
    is_terminal = django_filters.BooleanFilter(method="filter_is_terminal")
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gt")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = DateTimeFilter(field_name="updated_at", lookup_expr="gt")

    class Meta:
        model = Message
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(status__in=[v.lower() for v in value]) if value else queryset

    def filter_channel(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(channel_type__in=channel_types_of(value))

    def filter_is_terminal(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(terminal_q()) if value else queryset.exclude(terminal_q())


def _filtered(filterset_class: type[django_filters.FilterSet], filters, queryset) -> QuerySet:
    filterset = filterset_class(filters or {}, queryset)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs


# ---------------------------------------------------------------------------------------------
# Inboxes
# ---------------------------------------------------------------------------------------------


def inbox_list(*, account: Account) -> QuerySet[Inbox]:
    return Inbox.objects.filter(account=account).order_by("created_at", "id")


def inbox_get(*, account: Account, inbox_id: Any) -> Inbox | None:
    pk = parse_uuid(inbox_id)
    return None if pk is None else Inbox.objects.filter(account=account, pk=pk).first()


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def message_list(
    *,
    account: Account,
    filters: Any = None,
    family: str | None = None,
    conversation: Conversation | None = None,
) -> QuerySet[Message]:
    """Messages of the account; the caller paginates (cursor: never a COUNT, never OFFSET)."""
    queryset = Message.objects.filter(account=account)
    if family is not None:
        queryset = queryset.filter(channel_type__in=channel_types_of(family))
    if conversation is not None:
        queryset = queryset.filter(conversation=conversation)
    return _filtered(MessageFilter, filters, queryset)


def message_get(*, account: Account, message_id: Any, family: str | None = None) -> Message | None:
    pk = parse_uuid(message_id)
    if pk is None:
        return None
    # The API's most frequent read: a statement built once (rowsql), not by the ORM per call.
    if family is None:
        return rowsql.select_one(Message, id=pk, account=account.id)
    return rowsql.select_one(
        Message, id=pk, account=account.id, channel_type=list(channel_types_of(family))
    )


def message_get_by_customer_id(
    *, account: Account, customer_message_id: str, family: str | None = None
) -> Message | None:
    queryset = Message.objects.filter(account=account, customer_message_id=customer_message_id)
    if family is not None:
        queryset = queryset.filter(channel_type__in=channel_types_of(family))
    return queryset.first()


def message_events(*, message: Message) -> QuerySet[StatusEvent]:
    """The full status history of a message, every attempt, oldest first."""
    return StatusEvent.objects.filter(message=message).order_by("occurred_at", "received_at", "id")


# ---------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------


def conversation_list(*, account: Account) -> QuerySet[Conversation]:
    return Conversation.objects.filter(account=account).select_related("contact", "inbox")


def conversation_get(*, account: Account, conversation_id: Any) -> Conversation | None:
    pk = parse_id(conversation_id)
    if pk is None:
        return None
    return conversation_list(account=account).filter(pk=pk).first()


# ---------------------------------------------------------------------------------------------
# Outgoing webhooks
# ---------------------------------------------------------------------------------------------


def webhook_list(*, account: Account) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(account=account).order_by("created_at", "id")


def webhook_get(*, account: Account, webhook_id: Any) -> WebhookSubscription | None:
    pk = parse_id(webhook_id)
    return None if pk is None else webhook_list(account=account).filter(pk=pk).first()


def webhook_attempts(*, subscription: WebhookSubscription) -> QuerySet[OutgoingAttempt]:
    return OutgoingAttempt.objects.filter(event__subscription=subscription).select_related("event")


# ---------------------------------------------------------------------------------------------
# Campaigns
# ---------------------------------------------------------------------------------------------


def campaign_get(*, account: Account, campaign_id: Any) -> Campaign | None:
    pk = parse_uuid(campaign_id)
    if pk is None:
        return None
    return Campaign.objects.filter(account=account, pk=pk).select_related("inbox").first()


def campaign_list(*, account: Account) -> QuerySet[Campaign]:
    return Campaign.objects.filter(account=account).select_related("inbox")
