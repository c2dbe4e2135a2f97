"""Consent in the admin (DESIGN §14): the contact's history inline, the list of every change
with filters, and no way to edit the append-only record there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from inbox import consent
from inbox import services as inbox_services
from inbox.models import ConsentEvent
from statuses.providers.base import ConsentChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_consent_history_in_the_contact_and_the_event_list(admin_client, account, make_inbox):
    inbox = make_inbox(account, "twilio_sms")
    ada = inbox_services.contact_get_or_create(inbox=inbox, address="+15558675310", name="Ada")
    bob = inbox_services.contact_get_or_create(inbox=inbox, address="+15550009999", name="Bob")
    at = datetime(2026, 11, 29, 14, 5, tzinfo=UTC)
    consent.webhook_consents_apply(
        inbox=inbox,
        changes=[ConsentChange(ada.address, True, "keyword", "STOPALL", at, "inbound:SM1")],
        change_delivery_ids=[None],
        updates=[],
        update_delivery_ids=[],
    )
    consent.contact_consent_set(contact=bob, opted_out=True, actor="API key tm_abc…")

    page = admin_client.get(reverse("admin:inbox_contact_change", args=[ada.id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "STOPALL" in html and "SMS keyword" in html

    changelist = reverse("admin:inbox_consentevent_changelist")
    html = admin_client.get(changelist).content.decode()
    assert "STOPALL" in html and "API key tm_abc…" in html
    html = admin_client.get(changelist + "?source__exact=keyword").content.decode()
    assert "STOPALL" in html and "API key tm_abc…" not in html

    event = ConsentEvent.objects.get(contact=ada)
    assert admin_client.get(reverse("admin:inbox_consentevent_add")).status_code == 403
    delete = reverse("admin:inbox_consentevent_delete", args=[event.id])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ConsentEvent.objects.count() == 2
