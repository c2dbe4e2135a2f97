"""The only module that touches the channel layer (DESIGN §9, STYLE).

Called from services inside ``transaction.on_commit``, so a client never sees a state that
was rolled back. Changes are grouped: one channel-layer message per account per transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from channels_app import groups
from statuses.machine import tick_for

if TYPE_CHECKING:
    from statuses.services import StatusChange

log = logging.getLogger(__name__)


def status_event_payload(change: StatusChange) -> dict[str, Any]:
    error = None
    if change.error_code or change.error_title:
        error = {"code": change.error_code, "title": change.error_title}
    return {
        "type": "message.status",
        "message_id": str(change.message_id),
        "conversation_id": change.conversation_id,
        "status": change.status,
        "tick": tick_for(change.status),
        "error": error,
        "status_updated_at": change.status_updated_at.isoformat(),
        "version": change.version,
    }


def status_changes(changes: list[StatusChange]) -> None:
    by_account: dict[int, list[dict]] = defaultdict(list)
    for change in changes:
        by_account[change.account_id].append(status_event_payload(change))
    for account_id, events in by_account.items():
        _group_send(groups.account(account_id), {"type": "agent.events", "events": events})


def message_created(account_id: int, payload: dict[str, Any]) -> None:
    event = {"type": "message.created", **payload}
    _group_send(groups.account(account_id), {"type": "agent.events", "events": [event]})


def widget_event(contact_id: int, payload: dict[str, Any]) -> None:
    _group_send(groups.widget_contact(contact_id), {"type": "widget.event", "event": payload})


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        # A lost broadcast must never undo a committed status: clients re-read on reconnect.
        log.exception("broadcast to %s failed", group)
