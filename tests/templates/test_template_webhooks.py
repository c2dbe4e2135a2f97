"""Template webhooks on the inbox's WhatsApp URL (DESIGN §13): each field applied, unknown
templates created, the same signature check, and a body mixing message statuses and template
changes applies both."""

import pytest

from inbox.models import Message, Template
from statuses.models import WebhookDelivery
from tests.templates.conftest import WABA_ID, signed_post

pytestmark = pytest.mark.django_db


def envelope(*changes, waba_id=WABA_ID):
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": 1767225600, "changes": list(changes)}],
    }


def status_change(event, template_id="594425479261596", name="order_update", **extra):
    return {
        "field": "message_template_status_update",
        "value": {
            "event": event,
            "message_template_id": int(template_id),
            "message_template_name": name,
            "message_template_language": "en_US",
            "reason": extra.pop("reason", "NONE"),
            **extra,
        },
    }


def test_status_update_sets_status_and_reason(client, wa_inbox, make_template):
    template = make_template(wa_inbox, provider_template_id="594425479261596")

    response = signed_post(
        client, wa_inbox, envelope(status_change("PAUSED", reason="Low quality"))
    )

    assert response.status_code == 200
    template.refresh_from_db()
    assert (template.status, template.rejected_reason) == ("PAUSED", "Low quality")

    signed_post(client, wa_inbox, envelope(status_change("REINSTATED")))
    template.refresh_from_db()
    assert (template.status, template.rejected_reason) == ("APPROVED", "")


def test_quality_update_sets_the_score(client, wa_inbox, make_template):
    template = make_template(wa_inbox, provider_template_id="594425479261596")
    change = {
        "field": "message_template_quality_update",
        "value": {
            "previous_quality_score": "GREEN",
            "new_quality_score": "YELLOW",
            "message_template_id": 594425479261596,
            "message_template_name": "order_update",
            "message_template_language": "en_US",
        },
    }

    assert signed_post(client, wa_inbox, envelope(change)).status_code == 200

    template.refresh_from_db()
    assert template.quality_score == "YELLOW"


def test_category_update_sets_the_category(client, wa_inbox, make_template):
    template = make_template(wa_inbox, provider_template_id="594425479261596")
    change = {
        "field": "template_category_update",
        "value": {
            "message_template_id": 594425479261596,
            "message_template_name": "order_update",
            "message_template_language": "en_US",
            "previous_category": "UTILITY",
            "new_category": "MARKETING",
        },
    }

    assert signed_post(client, wa_inbox, envelope(change)).status_code == 200

    template.refresh_from_db()
    assert template.category == "MARKETING"


def test_an_unknown_template_is_created_from_the_webhook(client, wa_inbox):
    change = status_change(
        "APPROVED", "777", name="spring_sale", message_template_category="MARKETING"
    )

    assert signed_post(client, wa_inbox, envelope(change)).status_code == 200

    template = Template.objects.get(inbox=wa_inbox)
    assert (template.name, template.language, template.provider_template_id) == (
        "spring_sale",
        "en_US",
        "777",
    )
    assert (template.status, template.category) == ("APPROVED", "MARKETING")
    assert template.account_id == wa_inbox.account_id


def test_a_body_mixing_message_statuses_and_template_changes_applies_both(
    client, wa_inbox, make_template, make_message
):
    template = make_template(wa_inbox, provider_template_id="594425479261596")
    message = make_message(wa_inbox, provider_message_id="wamid.OUT1", status="sent")
    statuses = {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1"},
            "statuses": [
                {
                    "id": "wamid.OUT1",
                    "status": "delivered",
                    "timestamp": "1767225600",
                    "recipient_id": "16505076520",
                }
            ],
        },
    }

    response = signed_post(
        client,
        wa_inbox,
        envelope(statuses, status_change("REJECTED", reason="INCORRECT_CATEGORY")),
    )

    assert response.status_code == 200
    message.refresh_from_db()
    template.refresh_from_db()
    assert message.status == "delivered"
    assert (template.status, template.rejected_reason) == ("REJECTED", "INCORRECT_CATEGORY")
    delivery = WebhookDelivery.objects.get(inbox=wa_inbox)
    assert (delivery.verdict, delivery.status_count) == ("accepted", 2)


def test_a_bad_signature_applies_nothing(client, wa_inbox, make_template):
    template = make_template(wa_inbox, provider_template_id="594425479261596")
    wa_inbox.config["app_secret"] = "not-the-secret"  # sign with the wrong secret

    response = signed_post(client, wa_inbox, envelope(status_change("DISABLED")))

    assert response.status_code == 403
    template.refresh_from_db()
    assert template.status == "APPROVED"
    assert not Message.objects.exists()


def test_another_wabas_template_change_is_ignored(client, wa_inbox, make_template):
    template = make_template(wa_inbox, provider_template_id="594425479261596")

    response = signed_post(client, wa_inbox, envelope(status_change("DISABLED"), waba_id="999"))

    assert response.status_code == 200
    template.refresh_from_db()
    assert template.status == "APPROVED"
    assert not Template.objects.filter(inbox=wa_inbox).exclude(id=template.id).exists()


def test_an_event_that_is_no_status_is_recorded_as_ignored(client, wa_inbox, make_template):
    template = make_template(wa_inbox, provider_template_id="594425479261596")

    response = signed_post(client, wa_inbox, envelope(status_change("FLAGGED")))

    assert response.status_code == 200
    template.refresh_from_db()
    assert template.status == "APPROVED"
    delivery = WebhookDelivery.objects.get(inbox=wa_inbox)
    assert delivery.verdict == "ignored"
    assert "FLAGGED" in delivery.notes[0]["reason"]


def test_a_malformed_template_change_is_skipped_and_the_rest_applied(
    client, wa_inbox, make_template
):
    template = make_template(wa_inbox, provider_template_id="594425479261596")
    broken = {"field": "message_template_quality_update", "value": {"new_quality_score": "RED"}}

    response = signed_post(client, wa_inbox, envelope(broken, status_change("PAUSED")))

    assert response.status_code == 200
    template.refresh_from_db()
    assert (template.status, template.quality_score) == ("PAUSED", "UNKNOWN")
    assert WebhookDelivery.objects.get(inbox=wa_inbox).verdict == "partial"
