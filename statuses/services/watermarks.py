"""Watermarks: "everything up to here was delivered/read", applied in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from inbox.models import Inbox, Message
from statuses.machine import Status
from statuses.models import SendTry
from statuses.providers.base import Watermark
from statuses.services.merge import _store_and_merge
from statuses.services.rows import (
    _OUTGOING,
    ApplyResult,
    Outcome,
    Source,
    _lock_messages,
    _NewEvent,
)


def watermarks_apply(
    *,
    inbox: Inbox,
    watermarks: Sequence[Watermark],
    source: str = Source.WEBHOOK,
    delivery_id: int | None = None,
    delivery_ids: Sequence[int | None] | None = None,
) -> ApplyResult:
    """Mark every earlier outgoing message of each contact's conversation delivered/read.

    One statement selects and locks the covered messages of all watermarks at once; there is
    never a query per message (Chatwoot's watermark bug, DESIGN §11).
    """
    if not watermarks:
        return ApplyResult()
    with transaction.atomic(savepoint=False):
        marks = list(watermarks)
        if delivery_ids is None:
            delivery_ids = [delivery_id] * len(marks)
        bound_ids = sorted({w.up_to_provider_message_id for w in marks} - {""})
        bounds = _watermark_bounds(inbox.id, bound_ids)

        candidates = _watermark_candidates(inbox.id, marks, bounds)
        locked = _lock_messages({row["id"] for row in candidates})
        events: list[_NewEvent] = []
        for mark, mark_delivery_id in zip(marks, delivery_ids, strict=True):
            up_to = _watermark_bound(mark, bounds)
            if up_to is None:
                continue
            eligible = _WATERMARK_ELIGIBLE[mark.status]
            for row in candidates:
                current = locked.get(row["id"])
                if (
                    current is None
                    or row["to_address"] != mark.contact_address
                    or current["status"] not in eligible
                    or row["provider_time"] > up_to
                ):
                    continue
                events.append(
                    _NewEvent(
                        message_id=row["id"],
                        attempt=current["attempt"],
                        provider_message_id=current["provider_message_id"] or "",
                        correlation_id="",
                        status=mark.status,
                        raw_status=mark.raw_status,
                        occurred_at=mark.occurred_at,
                        source=source,
                        outcome=Outcome.RECORDED,
                        error_code="",
                        error_title="",
                        error_detail="",
                        dedupe_key=f"{mark.dedupe_key}|{row['id']}",
                        delivery_id=mark_delivery_id,
                    )
                )
        return _store_and_merge(inbox.id, events, locked)


_WATERMARK_ELIGIBLE = {
    Status.DELIVERED: frozenset({Status.UNKNOWN, Status.SENT, Status.RECEIVED}),
    Status.READ: frozenset({Status.UNKNOWN, Status.SENT, Status.RECEIVED, Status.DELIVERED}),
}


def _provider_time() -> Coalesce:
    """A message's time as the provider stamps it, bounded from below: when the accepted
    request went out (our ``sent_at`` is later, when the answer came back; Meta's watermark is
    its own timestamp of the message read, which lies in between)."""
    handed_over = Subquery(
        SendTry.objects.filter(
            message_id=OuterRef("id"),
            attempt=OuterRef("attempt"),
            outcome=SendTry.Outcome.ACCEPTED,
        )
        .order_by("-number")
        .values("started_at")[:1]
    )
    return Coalesce(handed_over, "sent_at", "created_at")


def _watermark_bounds(inbox_id: uuid.UUID, provider_ids: list[str]) -> dict[str, datetime]:
    if not provider_ids:
        return {}
    return dict(
        Message.objects.filter(
            inbox_id=inbox_id, direction=_OUTGOING, provider_message_id__in=provider_ids
        )
        .annotate(provider_time=_provider_time())
        .values_list("provider_message_id", "provider_time")
        .order_by()
    )


def _watermark_candidates(
    inbox_id: uuid.UUID, marks: list[Watermark], bounds: dict[str, datetime]
) -> list[dict]:
    addresses = sorted({m.contact_address for m in marks})
    latest = max((b for m in marks if (b := _watermark_bound(m, bounds)) is not None), default=None)
    if latest is None:
        return []
    eligible = sorted(set().union(*(_WATERMARK_ELIGIBLE[m.status] for m in marks)))
    return list(
        Message.objects.filter(
            inbox_id=inbox_id,
            direction=Message.Direction.OUTGOING,
            to_address__in=addresses,
            status__in=eligible,
            created_at__lte=latest,
        )
        .annotate(provider_time=_provider_time())
        .values("id", "to_address", "provider_time")
        .order_by()
    )


def _watermark_bound(mark: Watermark, bounds: dict[str, datetime]) -> datetime | None:
    candidates = [mark.up_to] if mark.up_to else []
    if mark.up_to_provider_message_id in bounds:
        candidates.append(bounds[mark.up_to_provider_message_id])
    return max(candidates) if candidates else None
