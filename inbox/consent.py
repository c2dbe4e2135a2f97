"""Consent (DESIGN §14): who opted out of an inbox's messages, who opted back in, and the
refusal of a send to them.

Every change is a ``ConsentEvent``, kept for good; the contact's ``opted_out`` and
``marketing_opted_out`` follow the newest event of their scope by the time it happened, so a
late or retried webhook never undoes a newer change. The changes come from the webhook door
(``statuses.ingestion``: SMS keywords, Viber and Telegram events, provider error codes in status
callbacks), from a send the provider refused (``statuses.sending``) and from the API.

Sends are refused twice: before anything is queued (``contact_check_sendable``, from
``statuses.outbound``), and by the worker just before the provider is called
(``statuses.consent_gate``), for an opt-out that committed while the send waited in the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from inbox.exceptions import ContactOptedOut, ContactOptedOutMarketing, InboxError
from inbox.models import ConsentEvent, Contact, Inbox, Message, Template
from statuses import errors
from statuses.providers.base import ConsentChange, StatusUpdate

Kind = ConsentEvent.Kind
Scope = ConsentEvent.Scope
Source = ConsentEvent.Source

# The template category WhatsApp refuses to a contact who stopped marketing (131050).
MARKETING = "MARKETING"


# ---------------------------------------------------------------------------------------------
# Refusals


def template_category(template: dict[str, Any] | None, known: Template | None = None) -> str | None:
    """The category of a template send (``MARKETING``, ``UTILITY``…), if it is known.

    The inbox's synced template (DESIGN §13) says it; a template never synced falls back to the
    send payload's own ``category``, if it names one.
    """
    if known is not None and known.category:
        return known.category
    category = (template or {}).get("category")
    return category.upper() if isinstance(category, str) and category else None


def refusal(*, contact: Contact, category: str | None = None) -> InboxError | None:
    """Why a message to ``contact`` must not be sent (a template of ``category``), or None."""
    if contact.opted_out:
        return ContactOptedOut(opt_out_sentence(contact) + " Nothing was sent.")
    if contact.marketing_opted_out and category == MARKETING:
        return ContactOptedOutMarketing()
    return None


def contact_check_sendable(
    *, contact: Contact, template: dict[str, Any] | None = None, known: Template | None = None
) -> None:
    """Raise the refusal of a send to ``contact`` (422 ``contact_opted_out`` or
    ``contact_opted_out_marketing``), before anything is queued. ``known`` is the inbox's
    synced template the send names, if any (its category decides a marketing opt-out)."""
    refused = refusal(contact=contact, category=template_category(template, known))
    if refused is not None:
        raise refused


def opt_out_sentence(contact: Contact) -> str:
    """Why the contact is opted out, for people: "This contact opted out by replying STOP on
    29 Nov." (the agent's banner and the refusal's message)."""
    event = (
        ConsentEvent.objects.filter(contact=contact, scope=Scope.ALL, kind=Kind.OPT_OUT)
        .order_by("-occurred_at", "-id")
        .first()
    )
    when = contact.opted_out_at or (event.occurred_at if event else None)
    on = f" on {date_format(timezone.localtime(when), 'j M')}" if when else ""
    if event is None:
        return f"This contact opted out{on}."
    if event.source == Source.KEYWORD:
        return f"This contact opted out by replying {event.detail}{on}."
    if event.source == Source.PROVIDER_ERROR:
        return (
            f"This contact opted out: the provider refused a message with error {event.detail}{on}."
        )
    if event.source == Source.PROVIDER_EVENT:
        return f"This contact opted out ({_event_words(event.detail)}){on}."
    return f"This contact was opted out through the API{on}."


def _event_words(detail: str) -> str:
    return {
        "unsubscribed": "unsubscribed on Viber",
        "my_chat_member kicked": "blocked the Telegram bot",
    }.get(detail, detail)


# ---------------------------------------------------------------------------------------------
# Recording changes


@dataclass(frozen=True)
class _Change:
    contact_id: int
    opted_out: bool
    scope: str
    source: str
    detail: str
    occurred_at: datetime
    dedupe_key: str = ""
    message_id: uuid.UUID | None = None
    webhook_delivery_id: int | None = None


def webhook_consents_apply(
    *,
    inbox: Inbox,
    changes: Sequence[ConsentChange],
    change_delivery_ids: Sequence[int | None],
    updates: Sequence[StatusUpdate],
    update_delivery_ids: Sequence[int | None],
) -> int:
    """Record what one inbox's webhooks said about consent: the parsed changes (keywords,
    provider events) and the status updates whose error code means an opt-out (Twilio 21610,
    WhatsApp 131050). Contacts are locked in id order; returns how many events were new."""
    pending = _from_changes(inbox, changes, change_delivery_ids)
    pending += _from_status_errors(inbox, updates, update_delivery_ids)
    if not pending:
        return 0
    recorded = 0
    with transaction.atomic():
        for change in sorted(pending, key=lambda c: (c.contact_id, c.occurred_at)):
            recorded += _record(change) is not None
    return recorded


def send_error_record(*, message: Message, error_code: str, occurred_at: datetime) -> None:
    """A provider refused ``message`` with an error that means the contact opted out: record
    it (once per attempt, whether the send's answer or a status callback said it first)."""
    scope = _opt_out_scope(message.channel_type, error_code)
    if scope is None:
        return
    _record(
        _Change(
            contact_id=message.conversation.contact_id,
            opted_out=True,
            scope=scope,
            source=Source.PROVIDER_ERROR,
            detail=error_code,
            occurred_at=occurred_at,
            dedupe_key=f"error:{message.id}:{message.attempt}",
            message_id=message.id,
        )
    )


def contact_consent_set(
    *,
    contact: Contact,
    opted_out: bool | None = None,
    marketing_opted_out: bool | None = None,
    actor: str = "",
) -> Contact:
    """Opt the contact out or back in through the API (source ``api``); a value that does not
    change the contact records nothing."""
    now = timezone.now()
    wanted = ((Scope.ALL, opted_out), (Scope.MARKETING, marketing_opted_out))
    with transaction.atomic():
        for scope, value in wanted:
            if value is None:
                continue
            _record(
                _Change(
                    contact_id=contact.id,
                    opted_out=value,
                    scope=scope,
                    source=Source.API,
                    detail=actor[:200],
                    occurred_at=now,
                ),
                only_if_changes=True,
            )
    contact.refresh_from_db()
    return contact


def _from_changes(
    inbox: Inbox, changes: Sequence[ConsentChange], delivery_ids: Sequence[int | None]
) -> list[_Change]:
    if not changes:
        return []
    contacts = {c.address: c for c in _contacts(inbox, {ch.contact_address for ch in changes})}
    # A keyword is also a message the agent sees (stored just before, in this transaction).
    carried = dict(
        Message.objects.filter(
            inbox=inbox,
            direction=Message.Direction.INCOMING,
            provider_message_id__in=[
                c.provider_message_id for c in changes if c.provider_message_id
            ],
        ).values_list("provider_message_id", "id")
    )
    return [
        _Change(
            contact_id=contacts[change.contact_address].id,
            opted_out=change.opted_out,
            scope=change.scope,
            source=change.source,
            detail=change.detail[:200],
            occurred_at=change.occurred_at,
            dedupe_key=change.dedupe_key[:300],
            message_id=carried.get(change.provider_message_id),
            webhook_delivery_id=delivery_id,
        )
        for change, delivery_id in zip(changes, delivery_ids, strict=True)
    ]


def _from_status_errors(
    inbox: Inbox, updates: Sequence[StatusUpdate], delivery_ids: Sequence[int | None]
) -> list[_Change]:
    """Status updates whose error code opts the contact out, matched to our message by the
    provider's id (an update for a message we do not know names nobody)."""
    opting = [
        (update, delivery_id, scope)
        for update, delivery_id in zip(updates, delivery_ids, strict=True)
        if update.error_code
        and (scope := _opt_out_scope(inbox.channel_type, update.error_code)) is not None
    ]
    if not opting:
        return []
    messages = {
        m.provider_message_id: m
        for m in Message.objects.filter(
            inbox=inbox,
            direction=Message.Direction.OUTGOING,
            provider_message_id__in=[update.provider_message_id for update, _, _ in opting],
        ).select_related("conversation")
    }
    found = []
    for update, delivery_id, scope in opting:
        message = messages.get(update.provider_message_id)
        if message is None:
            continue
        found.append(
            _Change(
                contact_id=message.conversation.contact_id,
                opted_out=True,
                scope=scope,
                source=Source.PROVIDER_ERROR,
                detail=update.error_code[:200],
                occurred_at=update.occurred_at,
                dedupe_key=f"error:{message.id}:{message.attempt}",
                message_id=message.id,
                webhook_delivery_id=delivery_id,
            )
        )
    return found


def _opt_out_scope(channel_type: str, error_code: str) -> str | None:
    info = errors.error_info(channel_type, error_code) if error_code else None
    return info.opts_out if info is not None and info.opts_out else None


def _contacts(inbox: Inbox, addresses: set[str]) -> list[Contact]:
    """The inbox's contacts at these addresses, created if new: an opt-out from someone who
    never wrote still refuses a later send to them."""
    existing = list(Contact.objects.filter(inbox=inbox, address__in=addresses))
    missing = addresses - {c.address for c in existing}
    for address in sorted(missing):
        contact, _ = Contact.objects.get_or_create(
            inbox=inbox, address=address, defaults={"account_id": inbox.account_id}
        )
        existing.append(contact)
    return existing


def _record(change: _Change, *, only_if_changes: bool = False) -> ConsentEvent | None:
    """Store one change (once per dedupe key) and move the contact to it if it is the newest
    of its scope. The contact row is locked, so concurrent changes are applied one by one."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(id=change.contact_id)
        if (
            change.dedupe_key
            and ConsentEvent.objects.filter(contact=contact, dedupe_key=change.dedupe_key).exists()
        ):
            return None
        marketing = change.scope == Scope.MARKETING
        current = contact.marketing_opted_out if marketing else contact.opted_out
        if only_if_changes and current == change.opted_out:
            return None
        newest = (
            ConsentEvent.objects.filter(contact=contact, scope=change.scope)
            .order_by("-occurred_at", "-id")
            .values_list("occurred_at", flat=True)
            .first()
        )
        event = ConsentEvent.objects.create(
            contact=contact,
            kind=Kind.OPT_OUT if change.opted_out else Kind.OPT_IN,
            scope=change.scope,
            source=change.source,
            detail=change.detail,
            occurred_at=change.occurred_at,
            message_id=change.message_id,
            webhook_delivery_id=change.webhook_delivery_id,
            dedupe_key=change.dedupe_key,
        )
        if newest is None or change.occurred_at >= newest:
            _set_state(contact, change, marketing=marketing)
    return event


def _set_state(contact: Contact, change: _Change, *, marketing: bool) -> None:
    at = change.occurred_at if change.opted_out else None
    source = change.source if change.opted_out else ""
    if marketing:
        contact.marketing_opted_out = change.opted_out
        contact.marketing_opted_out_at = at
        contact.marketing_opt_out_source = source
        fields = ["marketing_opted_out", "marketing_opted_out_at", "marketing_opt_out_source"]
    else:
        contact.opted_out = change.opted_out
        contact.opted_out_at = at
        contact.opt_out_source = source
        fields = ["opted_out", "opted_out_at", "opt_out_source"]
    contact.save(update_fields=fields)
