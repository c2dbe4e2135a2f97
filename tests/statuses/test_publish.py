"""The one publisher: frozen events, the integrator outbox in the status transaction, the same
message representation as the REST API, the broadcast only after commit."""

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from rest_framework.renderers import JSONRenderer

from channels_app.events import MessageCreated
from inbox.api.serializers import MessageSerializer
from inbox.models import Message
from statuses import services
from statuses.events import StatusChange
from statuses.machine import Status
from statuses.models import OutgoingEvent, WebhookSubscription
from statuses.providers.base import StatusUpdate

pytestmark = pytest.mark.django_db(transaction=False)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_events_are_frozen(inbox, make_message):
    message = make_message(inbox)
    event = MessageCreated.from_message(message)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = Status.READ  # type: ignore[misc]
    assert json.loads(json.dumps(event.as_payload()))["message_id"] == str(message.id)


def test_a_status_change_reaches_the_outbox_at_once_and_the_screen_after_commit(
    inbox, make_message, django_capture_on_commit_callbacks
):
    WebhookSubscription.objects.create(
        account=inbox.account, url="https://example.com/hook", events=["message.status_changed"]
    )
    message = make_message(inbox, provider_message_id="wamid.1", status=Status.SENT)
    update = StatusUpdate(
        provider_message_id="wamid.1",
        status=Status.DELIVERED,
        raw_status="delivered",
        occurred_at=T0,
        dedupe_key="wamid.1:delivered",
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = services.status_updates_apply(inbox=inbox, updates=[update])
        # The outbox row is written inside the transaction, before any broadcast runs.
        event = OutgoingEvent.objects.get()
    assert [type(change) for change in result.changes] == [StatusChange]
    assert len(callbacks) == 1  # the broadcast waits for the commit
    # The integrator sees the message exactly as the REST API shows it.
    api = json.loads(JSONRenderer().render(MessageSerializer(Message.objects.get()).data))
    assert event.payload["data"]["message"] == api
    assert api["status"] == "DELIVERED" and api["id"] == str(message.id)
