"""Check a campaign's recipients one by one: the bad ones are listed, the rest go ahead.

Every check is a set operation over all recipients or one query for all of them, never a query
per recipient, so 100,000 recipients are checked in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from inbox.addresses import MAX_LENGTH, address_problem
from inbox.models import SERVICE_WINDOW, Contact, Conversation, Inbox, Message
from statuses.campaigns import sql

# Rejection codes (per recipient; listed with its index in the create answer).
INVALID_RECIPIENT = "invalid_recipient"  # not an object with a string ``to``
INVALID_ADDRESS = "invalid_address"
DUPLICATE = "duplicate_recipient"
DUPLICATE_CUSTOMER_ID = "duplicate_customer_message_id"
OPTED_OUT = "contact_opted_out"
OUTSIDE_WINDOW = "outside_customer_service_window"
INVALID_PARAMETERS = "invalid_parameters"


@dataclass(frozen=True, slots=True)
class Recipient:
    index: int
    to: str
    parameters: list[str] | dict[str, str] | None = None
    customer_message_id: str | None = None

    def stored(self) -> list[Any]:
        """The compact row kept in a ``CampaignBatch`` until it becomes a message."""
        return [self.index, self.to, self.parameters, self.customer_message_id]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    to: str
    code: str


CUSTOMER_ID_MAX = 200  # Message.customer_message_id


def recipients_parse(raw: Sequence[Any]) -> tuple[list[Recipient], list[Rejection]]:
    """The recipients as given (a JSON list, or the rows of a CSV), read by hand: the
    well-formed ones, and the malformed ones as rejections — one bad item never fails the rest.

    Shared by ``POST /api/v1/campaigns`` and the campaigns page; ``recipients_check`` then
    judges the well-formed ones.
    """
    good, bad = [], []
    for index, item in enumerate(raw):
        to = item.get("to") if isinstance(item, dict) else None
        cid = item.get("customer_message_id") if isinstance(item, dict) else None
        cid_ok = cid is None or (isinstance(cid, str) and len(cid) <= CUSTOMER_ID_MAX)
        if not isinstance(to, str) or not cid_ok:
            shown = str(to)[:MAX_LENGTH] if to is not None else ""
            bad.append(Rejection(index, shown, INVALID_RECIPIENT))
            continue
        good.append(Recipient(index, to.strip(), item.get("parameters"), cid or None))
    return good, bad


def opted_out_addresses(
    *, inbox: Inbox, addresses: Sequence[str], marketing: bool = False
) -> set[str]:
    """The addresses among ``addresses`` whose contact in ``inbox`` opted out (DESIGN §14) — of
    every message, or, for a MARKETING template (``marketing``), of marketing too — in one query."""
    opted = Q(opted_out=True) | Q(marketing_opted_out=True) if marketing else Q(opted_out=True)
    if connection.vendor == "postgresql":  # 100,000 addresses: one array parameter
        opted &= Q(address__in=RawSQL("SELECT unnest(%s::text[])", [list(addresses)]))
    else:
        opted &= Q(address__in=addresses)
    return set(Contact.objects.filter(opted, inbox=inbox).values_list("address", flat=True))


def recipients_check(
    *, inbox: Inbox, recipients: Sequence[Recipient], free_text: bool, marketing: bool = False
) -> tuple[list[Recipient], list[Rejection]]:
    """Split ``recipients`` into accepted and rejected (with a code), keeping their order.

    ``free_text``: the campaign sends content rather than a template, which channels with a
    24-hour service window only allow to contacts who wrote within it. ``marketing``: the
    template is a MARKETING one, refused to contacts who stopped marketing messages too.
    """
    family = inbox.family
    rejected: dict[int, str] = {}
    seen: set[str] = set()
    seen_ids: set[str] = set()
    for r in recipients:
        problem = address_problem(family, r.to)
        if problem is not None:
            rejected[r.index] = INVALID_ADDRESS
        elif not _parameters_ok(r.parameters):
            rejected[r.index] = INVALID_PARAMETERS
        elif r.to in seen or (r.customer_message_id and r.customer_message_id in seen_ids):
            rejected[r.index] = DUPLICATE
        else:
            seen.add(r.to)
            if r.customer_message_id:
                seen_ids.add(r.customer_message_id)
    candidates = [r for r in recipients if r.index not in rejected]
    addresses = [r.to for r in candidates]
    opted_out = (
        opted_out_addresses(inbox=inbox, addresses=addresses, marketing=marketing)
        if addresses
        else set()
    )
    taken_ids = _customer_ids_taken(inbox, [r.customer_message_id for r in candidates])
    window_open = None
    if free_text and inbox.channel.has_service_window and addresses:
        window_open = _window_open(inbox, addresses)
    for r in candidates:
        if r.to in opted_out:
            rejected[r.index] = OPTED_OUT
        elif r.customer_message_id and r.customer_message_id in taken_ids:
            rejected[r.index] = DUPLICATE_CUSTOMER_ID
        elif window_open is not None and r.to not in window_open:
            rejected[r.index] = OUTSIDE_WINDOW
    accepted = [r for r in recipients if r.index not in rejected]
    rejections = [
        Rejection(r.index, r.to[:MAX_LENGTH], rejected[r.index])
        for r in recipients
        if r.index in rejected
    ]
    return accepted, rejections


def _parameters_ok(parameters: object) -> bool:
    if parameters is None:
        return True
    if isinstance(parameters, list):
        return len(parameters) <= 50 and all(
            isinstance(v, str) and len(v) <= 1024 for v in parameters
        )
    if isinstance(parameters, dict):
        return len(parameters) <= 50 and all(
            isinstance(k, str) and len(k) <= 100 and isinstance(v, str) and len(v) <= 1024
            for k, v in parameters.items()
        )
    return False


def _customer_ids_taken(inbox: Inbox, ids: list[str | None]) -> set[str]:
    wanted = [i for i in ids if i]
    if not wanted:
        return set()
    if connection.vendor == "postgresql":  # 100,000 ids: one parameter, not 100,000
        return sql.customer_ids_taken(inbox.account_id, wanted)
    return set(
        Message.objects.filter(account_id=inbox.account_id, customer_message_id__in=wanted)
        .values_list("customer_message_id", flat=True)
        .order_by()
    )


def _window_open(inbox: Inbox, addresses: list[str]) -> set[str]:
    since = timezone.now() - SERVICE_WINDOW
    return set(
        Conversation.objects.filter(
            inbox=inbox, contact__address__in=addresses, last_inbound_at__gte=since
        )
        .values_list("contact__address", flat=True)
        .order_by()
    )
