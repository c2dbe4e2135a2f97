"""``/api/v1/contacts`` and the consent refusals of ``POST /api/v1/messages`` (DESIGN §14)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from inbox import consent
from inbox import services as inbox_services
from inbox.models import ConsentEvent, Message

pytestmark = pytest.mark.django_db

SMS_TO = "+15558675310"
WA_TO = "+16505076520"


def contact_of(inbox, address, name=""):
    return inbox_services.contact_get_or_create(inbox=inbox, address=address, name=name)


def send(client, inbox, to, **body):
    payload = {"inbox": str(inbox.id), "to": to, "content": "Hi", **body}
    return client.post("/api/v1/messages", payload, format="json")


# --- refusals -------------------------------------------------------------------------------


def test_sending_to_an_opted_out_contact_is_422_and_nothing_is_queued(client, sms_inbox):
    consent.contact_consent_set(contact=contact_of(sms_inbox, SMS_TO), opted_out=True)
    response = send(client, sms_inbox, SMS_TO)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "contact_opted_out"
    assert error["message"].startswith("This contact was opted out through the API on ")
    assert not Message.objects.exists()
    assert not DBTaskResult.objects.filter(task_path="statuses.tasks.send_message").exists()


def test_marketing_template_to_a_marketing_opt_out_is_422(client, inbox):
    consent.contact_consent_set(contact=contact_of(inbox, WA_TO), marketing_opted_out=True)
    template = {"name": "spring_sale", "language": {"code": "en"}, "category": "MARKETING"}
    response = client.post(
        "/api/v1/messages",
        {"inbox": str(inbox.id), "to": WA_TO, "template": template},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "contact_opted_out_marketing"
    utility = {**template, "name": "order_update", "category": "UTILITY"}
    response = client.post(
        "/api/v1/messages",
        {"inbox": str(inbox.id), "to": WA_TO, "template": utility},
        format="json",
    )
    assert response.status_code == 202
    assert Message.objects.count() == 1


def test_opting_back_in_through_the_api_allows_sending_again(client, sms_inbox):
    contact = contact_of(sms_inbox, SMS_TO)
    consent.contact_consent_set(contact=contact, opted_out=True)
    assert send(client, sms_inbox, SMS_TO).status_code == 422
    response = client.patch(f"/api/v1/contacts/{contact.id}", {"opted_out": False}, format="json")
    assert response.status_code == 200
    assert send(client, sms_inbox, SMS_TO).status_code == 202


# --- GET /api/v1/contacts -------------------------------------------------------------------


def test_list_filters_by_inbox_opted_out_and_q(client, inbox, sms_inbox, other_account, make_inbox):
    ada = contact_of(sms_inbox, SMS_TO, name="Ada Lovelace")
    bob = contact_of(sms_inbox, "+15550009999", name="Bob")
    wa = contact_of(inbox, WA_TO, name="Ada on WhatsApp")
    contact_of(make_inbox(other_account, "twilio_sms"), SMS_TO, name="Ada elsewhere")
    consent.contact_consent_set(contact=ada, opted_out=True)

    def ids(query=""):
        response = client.get(f"/api/v1/contacts{query}")
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [ada.id, bob.id, wa.id]  # never another account's
    assert ids(f"?inbox={sms_inbox.id}") == [ada.id, bob.id]
    assert ids("?opted_out=true") == [ada.id]
    assert ids("?opted_out=false") == [bob.id, wa.id]
    assert ids("?q=ada") == [ada.id, wa.id]
    assert ids("?q=0009") == [bob.id]
    row = client.get("/api/v1/contacts?opted_out=true").json()["results"][0]
    assert row["opted_out"] is True and row["opt_out_source"] == "api"
    assert row["inbox"] == str(sms_inbox.id) and row["opted_out_at"] is not None
    assert client.get("/api/v1/contacts?q=ada").json()["results"][1]["opt_out_source"] is None


@pytest.mark.parametrize("query", ["?inbox=nope", "?opted_out=maybe", "?q=" + "x" * 201])
def test_bad_filters_are_400(client, query):
    response = client.get(f"/api/v1/contacts{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_list_is_paginated_and_its_queries_do_not_grow(client, sms_inbox):
    for n in range(5):
        contact_of(sms_inbox, f"+1555000{n:04d}")
    first = client.get("/api/v1/contacts?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    assert [r["address"] for r in second["results"]] == ["+15550000002", "+15550000003"]
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/contacts?page_size=1")
    with CaptureQueriesContext(connection) as large:
        client.get("/api/v1/contacts?page_size=5")
    assert len(large) == len(small)


# --- GET/PATCH /api/v1/contacts/<id> --------------------------------------------------------


def test_patch_records_api_consent_events(client, sms_inbox, api_key):
    contact = contact_of(sms_inbox, SMS_TO)
    url = f"/api/v1/contacts/{contact.id}"
    response = client.patch(url, {"opted_out": True}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["opted_out"] is True and body["opt_out_source"] == "api"
    assert [(e["kind"], e["source"]) for e in body["consent_events"]] == [("opt_out", "api")]
    # The same value again records nothing.
    client.patch(url, {"opted_out": True}, format="json")
    assert ConsentEvent.objects.filter(contact=contact).count() == 1
    body = client.patch(url, {"opted_out": False}, format="json").json()
    assert body["opted_out"] is False and body["opted_out_at"] is None
    assert [e["kind"] for e in body["consent_events"]] == ["opt_in", "opt_out"]
    event = ConsentEvent.objects.filter(contact=contact).first()
    assert event.detail == f"API key {api_key[:10]}…"
    assert client.get(url).json()["consent_events"][0]["kind"] == "opt_in"


def test_patch_marketing_alone(client, inbox):
    contact = contact_of(inbox, WA_TO)
    body = client.patch(
        f"/api/v1/contacts/{contact.id}", {"marketing_opted_out": True}, format="json"
    ).json()
    assert body["marketing_opted_out"] is True and body["opted_out"] is False
    assert body["consent_events"][0]["scope"] == "marketing"


@pytest.mark.parametrize("payload", [{}, {"opted_out": "perhaps"}, {"opted_out": None}])
def test_patch_without_a_valid_value_is_400(client, sms_inbox, payload):
    contact = contact_of(sms_inbox, SMS_TO)
    response = client.patch(f"/api/v1/contacts/{contact.id}", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not ConsentEvent.objects.exists()


def test_another_accounts_contact_is_404(other_client, client, sms_inbox):
    contact = contact_of(sms_inbox, SMS_TO)
    for response in (
        other_client.get(f"/api/v1/contacts/{contact.id}"),
        other_client.patch(f"/api/v1/contacts/{contact.id}", {"opted_out": True}, format="json"),
        client.get("/api/v1/contacts/999999999"),
        client.get("/api/v1/contacts/not-an-id"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert other_client.get("/api/v1/contacts").json()["results"] == []
    contact.refresh_from_db()
    assert not contact.opted_out and not ConsentEvent.objects.exists()
