"""The agent's conversation view with an opted-out contact (DESIGN §14): a banner saying why
instead of a compose box that can only fail, and the refusal if a send is tried anyway."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from inbox import consent
from inbox import services as inbox_services
from inbox.models import Membership, Message
from statuses.providers.base import ConsentChange

pytestmark = pytest.mark.django_db

SMS_TO = "+15558675310"
NOV_29 = datetime(2026, 11, 29, 14, 5, tzinfo=UTC)


def _client_for(account):
    user = get_user_model().objects.create_user(username="ada", password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sms_inbox(account, make_inbox):
    return make_inbox(
        account, "twilio_sms", account_sid="AC123", auth_token="t", from_number="+15550001111"
    )


def _keyword(inbox, word, sid, at=NOV_29):
    consent.webhook_consents_apply(
        inbox=inbox,
        changes=[ConsentChange(SMS_TO, word == "STOP", "keyword", word, at, f"inbound:{sid}")],
        change_delivery_ids=[None],
        updates=[],
        update_delivery_ids=[],
    )


def test_opted_out_contact_shows_the_banner_instead_of_the_compose_box(account, sms_inbox):
    contact = inbox_services.contact_get_or_create(inbox=sms_inbox, address=SMS_TO)
    conversation = inbox_services.conversation_get_or_create(inbox=sms_inbox, contact=contact)
    client = _client_for(account)
    url = f"/conversations/{conversation.id}/"
    html = client.get(url).content.decode()
    assert "data-compose" in html and "data-opted-out" not in html

    _keyword(sms_inbox, "STOP", "SM1")
    html = client.get(url).content.decode()
    assert "This contact opted out by replying STOP on 29 Nov." in html
    assert "data-opted-out" in html
    assert 'id="compose-content"' not in html and "data-compose-text" not in html
    assert "Opted out (SMS keyword)" in html  # the contact panel

    # A send tried anyway (a page left open) is refused with the reason; nothing is created.
    response = client.post(
        f"/conversations/{conversation.id}/send/",
        {"content": "Hello?"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "contact_opted_out"
    assert error["message"].startswith("This contact opted out by replying STOP on 29 Nov.")
    assert not Message.objects.filter(direction="outgoing").exists()

    # Opting back in removes the banner (on the next load of the page).
    _keyword(sms_inbox, "START", "SM2", at=NOV_29.replace(hour=15))
    html = client.get(url).content.decode()
    assert "data-opted-out" not in html and 'id="compose-content"' in html
