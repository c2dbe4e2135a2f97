"""The one publisher of the write path: every change a user can see leaves through here.

Called by services inside their transaction. The integrator outbox (``statuses.outgoing``) is
written in that same transaction, so an integrator event exists iff the change committed; the
live broadcast (``channels_app.broadcast``) is scheduled ``on_commit``, so a client never sees
a state that was rolled back.
"""

from __future__ import annotations

from django.db import transaction

from channels_app import broadcast
from channels_app.events import MessageCreated, WidgetMessage
from inbox.models import Message
from statuses import campaign_counts, outgoing
from statuses.events import StatusChange


def status_changes(changes: list[StatusChange], *, notify_integrators: bool = True) -> None:
    """Publish merged status changes.

    ``notify_integrators`` is False when the lock query already showed that no account
    concerned has an active webhook subscription (saves a query on the hot path).
    """
    if not changes:
        return
    if notify_integrators:
        outgoing.status_changes_record(changes)
    campaign_counts.status_changes_count(changes)  # in this transaction (DESIGN §16)
    transaction.on_commit(lambda: broadcast.status_changes(changes))


def message_created(message: Message, *, notify_integrators: bool) -> None:
    """Publish a new message: to integrators (outgoing ones) and to the agents' screens."""
    if notify_integrators:
        outgoing.message_created_record(message)
    account_id = message.account_id
    event = MessageCreated.from_message(message)  # the socket's typed shape (channels_app.events)
    transaction.on_commit(lambda: broadcast.message_created(account_id, event))


def widget_message(message: Message) -> None:
    """Push an agent's accepted message to the web-widget contact's open page."""
    contact_id = message.conversation.contact_id
    event = WidgetMessage.from_message(message)
    transaction.on_commit(lambda: broadcast.widget_event(contact_id, event))
