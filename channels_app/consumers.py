"""WebSocket consumers (DESIGN §9): the agent's live inbox and the contact's web widget.

Both authorize first, join their group, and accept last; events reach them only through
``channels_app.broadcast`` (after the database transaction commits).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from channels_app import groups
from channels_app.events import AgentEvents, Pong, SocketError
from inbox import ratelimit
from inbox.models import Contact, Membership, Message
from statuses import services
from statuses.models import StatusEvent

log = logging.getLogger(__name__)

# Close codes in the application range (4000-4999): the browser sees why it was refused.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429

# Per-socket memory of the newest version forwarded for each message; bounded, oldest dropped.
VERSION_MEMORY = 5000


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/agent/``: the signed-in agent's account events, never another account's."""

    account_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.account_id = await _account_id_of(user)
        if self.account_id is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.versions: OrderedDict[str, int] = OrderedDict()
        await self.channel_layer.group_add(groups.account(self.account_id), self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.account_id is not None:
            await self.channel_layer.group_discard(
                groups.account(self.account_id), self.channel_name
            )

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json(Pong().as_payload())

    async def agent_events(self, message: dict[str, Any]) -> None:
        """Forward a batch of account events, dropping any older than one already sent."""
        fresh = [event for event in message.get("events", []) if self._is_fresh(event)]
        if fresh:
            # Already ``MessageStatus``/``MessageCreated`` payloads (built by broadcast).
            await self.send_json({"type": AgentEvents.type, "events": fresh})

    def _is_fresh(self, event: dict[str, Any]) -> bool:
        # Broadcasts from several processes can overtake each other on the way here.
        message_id, version = event.get("message_id"), event.get("version")
        if not message_id or not isinstance(version, int):
            return True
        if self.versions.get(message_id, 0) >= version:
            return False
        self.versions[message_id] = version
        self.versions.move_to_end(message_id)
        while len(self.versions) > VERSION_MEMORY:
            self.versions.popitem(last=False)
        return True


class WidgetConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/widget/<inbox_id>/?token=…``: one contact's conversation in the web widget.

    The token names the contact; the socket only ever carries that contact's messages, and
    acks/reads are accepted only for outgoing messages of that contact's conversation.
    """

    contact_id: int | None = None

    async def connect(self) -> None:
        refusal = await ratelimit.ahit(
            "widget_socket",
            ratelimit.scope_client(self.scope),
            ratelimit.rate_setting("TICKMARK_WIDGET_SOCKET_RATE"),
        )
        if not refusal.allowed:
            # Accepted only to say why: a refused handshake reaches the page as a bare 1006.
            await self.accept()
            await self._refuse(refusal, "Too many connections.")
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        token = (query.get("token") or [""])[0]
        inbox_id = self.scope["url_route"]["kwargs"]["inbox_id"]
        self.contact_id = await _widget_contact_id(inbox_id, token) if token else None
        if self.contact_id is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(
            groups.widget_contact(self.contact_id), self.channel_name
        )
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.contact_id is not None:
            await self.channel_layer.group_discard(
                groups.widget_contact(self.contact_id), self.channel_name
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Every frame counts, parsable or not: each one may cost the database a write.
        refusal = await ratelimit.ahit(
            "widget_frame",
            str(self.contact_id),
            ratelimit.rate_setting("TICKMARK_WIDGET_FRAME_RATE"),
        )
        if not refusal.allowed:
            await self._refuse(refusal, "Too many messages on this connection.")
            return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def _refuse(self, refusal: ratelimit.Verdict, what: str) -> None:
        error = SocketError(
            code="rate_limited", message=refusal.message(what), retry_after=refusal.retry_after
        )
        await self.send_json(error.as_payload())
        await self.close(code=CLOSE_RATE_LIMITED)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Take the widget's receipts: ``ack`` → delivered, ``read`` → read."""
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "ping":
            await self.send_json(Pong().as_payload())
            return
        status = {"ack": "delivered", "read": "read"}.get(kind)
        if status is None:
            return
        ids = content.get("message_ids")
        if ids is None and content.get("message_id"):
            ids = [content["message_id"]]
        message_ids = _uuids(ids)
        if message_ids:
            await _report(self.contact_id, message_ids, status)

    async def widget_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])


def _uuids(values: Any) -> list[uuid.UUID]:
    if not isinstance(values, list):
        return []
    parsed: list[uuid.UUID] = []
    for value in values[:100]:
        try:
            parsed.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return parsed


@database_sync_to_async
def _account_id_of(user) -> int | None:

    return Membership.objects.filter(user=user).values_list("account_id", flat=True).first()


@database_sync_to_async
def _widget_contact_id(inbox_id: uuid.UUID, token: str) -> int | None:

    return (
        Contact.objects.filter(token=token, inbox_id=inbox_id, inbox__channel_type="web_widget")
        .values_list("id", flat=True)
        .first()
    )


@database_sync_to_async
def _report(contact_id: int, message_ids: list[uuid.UUID], status: str) -> None:

    messages = Message.objects.filter(
        id__in=message_ids,
        conversation__contact_id=contact_id,
        direction=Message.Direction.OUTGOING,
    )
    for message in messages:
        services.message_status_report(
            message=message, status=status, source=StatusEvent.Source.WIDGET
        )
