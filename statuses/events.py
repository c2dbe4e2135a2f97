"""The domain event of the write path: a message's merged status changed (issue #11).

What the live sockets carry is typed once in ``channels_app.events`` (``MessageStatus`` is built
from this ``StatusChange``; ``MessageCreated`` and ``WidgetMessage`` straight from the stored
message, inside the transaction, so the value handed to ``on_commit`` is frozen).

Services build them inside their transaction; ``statuses.publish`` hands them to the integrator
outbox (``statuses.outgoing``) at once and to the live channel (``channels_app.broadcast``)
after commit. Nothing here touches the database: the events are plain values, so a test can
build one, and a consumer cannot change what another one receives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A message whose merged state changed, as broadcast and sent to integrators."""

    message_id: uuid.UUID
    account_id: int
    conversation_id: int
    channel_type: str
    previous_status: str
    status: str
    version: int
    status_updated_at: datetime
    error_code: str
    error_title: str
    error_detail: str
    campaign_id: uuid.UUID | None = None  # counted by statuses.campaign_counts
