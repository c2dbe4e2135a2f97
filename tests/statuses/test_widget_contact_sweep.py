"""Idle anonymous widget contacts expire (issue #10 item 7): contacts that never wrote and were
never written to are deleted with their empty conversations, in batches, by a worker sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import services
from inbox.models import Contact, Conversation, Message
from statuses import sweeps
from statuses.providers.base import InboundMessage

pytestmark = pytest.mark.django_db


@pytest.fixture
def widget(account, make_inbox):
    return make_inbox(account, "web_widget")


def contact(inbox, address, age=timedelta(hours=25)):
    created = services.contact_get_or_create(inbox=inbox, address=address)
    services.conversation_get_or_create(inbox=inbox, contact=created)
    Contact.objects.filter(id=created.id).update(created_at=timezone.now() - age)
    return created


def test_only_old_silent_widget_contacts_go(widget, inbox, make_message):
    idle = contact(widget, "web-idle")
    young = contact(widget, "web-young", age=timedelta(hours=23))
    wrote = contact(widget, "web-wrote")
    services.inbound_messages_store(
        inbox=widget,
        inbound=[
            InboundMessage(
                contact_address="web-wrote",
                provider_message_id="widget-1",
                content="hello",
                occurred_at=timezone.now(),
            )
        ],
    )
    answered = contact(widget, "web-answered")  # an agent wrote first; the contact never did
    make_message(widget, to="web-answered")
    whatsapp = contact(inbox, "+15550001234")  # other channels' contacts are never swept

    assert sweeps.widget_contacts_expire() == 1

    assert set(Contact.objects.values_list("id", flat=True)) == {
        young.id,
        wrote.id,
        answered.id,
        whatsapp.id,
    }
    assert not Conversation.objects.filter(contact_id=idle.id).exists()
    assert Message.objects.count() == 2
    assert sweeps.widget_contacts_expire() == 0


def test_the_expired_token_no_longer_opens_the_chat(widget):
    token = Client().post(f"/widget/{widget.id}/start/", {}, content_type="application/json")
    token = token.json()["token"]
    Contact.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert sweeps.widget_contacts_expire() == 1
    response = Client().get(f"/widget/{widget.id}/messages/", HTTP_X_WIDGET_TOKEN=token)
    assert response.status_code == 403  # the widget starts over


def test_age_comes_from_the_setting(widget, settings):
    settings.TICKMARK_WIDGET_IDLE_CONTACT_HOURS = 2
    contact(widget, "web-3h", age=timedelta(hours=3))
    contact(widget, "web-1h", age=timedelta(hours=1))
    assert sweeps.widget_contacts_expire() == 1
    assert list(Contact.objects.values_list("address", flat=True)) == ["web-1h"]


def test_batches_with_constant_queries(widget, monkeypatch):
    monkeypatch.setattr(sweeps, "BATCH", 3)
    for i in range(8):
        contact(widget, f"web-{i}")
    with CaptureQueriesContext(connection) as two_batches:
        assert sweeps.widget_contacts_expire(max_batches=2) == 6
    assert Contact.objects.count() == 2
    with CaptureQueriesContext(connection) as last_batch:
        assert sweeps.widget_contacts_expire() == 2
    assert Contact.objects.count() == 0
    # A batch costs the same statements whatever it holds (3 rows, then 2).
    per_batch = (len(two_batches) - 1) / 2  # minus the widget-inbox lookup
    assert len(last_batch) - 1 == per_batch
    assert per_batch <= 13  # 12, + the contacts' consent events (DESIGN §14)


def test_run_all_includes_the_sweep(widget):
    contact(widget, "web-idle")
    assert sweeps.run_all()["widget_contacts_expire"] == 1
