"""``/api/v1/campaigns``: create (JSON and CSV), per-recipient rejections, limits, tenancy."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Campaign, CampaignBatch, Message
from statuses.campaigns import create
from statuses.models import StatusEvent

pytestmark = pytest.mark.django_db

TEMPLATE = {"name": "order_shipped", "language": {"code": "en_US"}}


def post(client, to_inbox, recipients, **fields):
    body = {"name": "Shipped", "inbox": str(to_inbox.id), "template": TEMPLATE, **fields}
    return client.post("/api/v1/campaigns", {**body, "recipients": recipients}, format="json")


def test_rejected_recipients_never_block_the_rest(client, inbox, materialise_all):
    recipients = [
        {"to": "+15551230001", "parameters": ["Ana", "A-1"]},
        {"to": "not a phone"},
        {"to": "+15551230002", "parameters": ["Bo", "A-2"], "customer_message_id": "o-2"},
        {"to": "+15551230001"},  # the same contact again
        {"number": "+15551230003"},  # no `to`
        {"to": "+15551230004", "parameters": {"bad": 1}},
        "+15551230005",
        {"to": " +15551230006 "},
    ]
    response = post(client, inbox, recipients)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "RUNNING"
    assert body["total"] == 3
    assert body["rejected"] == [
        {"index": 1, "to": "not a phone", "code": "invalid_address"},
        {"index": 3, "to": "+15551230001", "code": "duplicate_recipient"},
        {"index": 4, "to": "", "code": "invalid_recipient"},
        {"index": 5, "to": "+15551230004", "code": "invalid_parameters"},
        {"index": 6, "to": "", "code": "invalid_recipient"},
    ]
    assert body["rejected_count"] == 5
    assert body["materialised"] == 0  # the answer comes before the messages

    materialise_all(body["id"])
    messages = Message.objects.filter(campaign_id=body["id"]).order_by("to_address")
    assert [m.to_address for m in messages] == ["+15551230001", "+15551230002", "+15551230006"]
    first = messages[0]
    assert first.template["components"] == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-1"}],
        }
    ]
    assert messages[1].customer_message_id == "o-2"
    detail = client.get(f"/api/v1/campaigns/{body['id']}").json()
    assert detail["materialised"] == 3
    assert detail["counts"]["QUEUED"] == 3


def test_content_placeholders_and_taken_customer_ids(
    client, sms_inbox, make_message, materialise_all
):
    make_message(sms_inbox, to="+15559990000", customer_message_id="taken")
    response = post(
        client,
        sms_inbox,
        [
            {"to": "+15551230001", "parameters": {"name": "Ana"}},
            {"to": "+15551230002", "customer_message_id": "taken"},
        ],
        template=None,
        content="Hi {{name}}, your order shipped.",
    )
    # ``template: null`` and content: the serializer sees both keys
    assert response.status_code == 400
    body = {"name": "SMS", "inbox": str(sms_inbox.id), "content": "Hi {{name}}!"}
    recipients = [
        {"to": "+15551230001", "parameters": {"name": "Ana"}},
        {"to": "+15551230002", "customer_message_id": "taken"},
    ]
    response = client.post("/api/v1/campaigns", {**body, "recipients": recipients}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["rejected"] == [
        {"index": 1, "to": "+15551230002", "code": "duplicate_customer_message_id"}
    ]
    materialise_all(response.json()["id"])
    assert Message.objects.get(campaign_id=response.json()["id"]).content == "Hi Ana!"


def test_free_text_on_whatsapp_needs_an_open_window(client, inbox, open_window):
    open_window(inbox, "+15551230001")
    body = {"name": "Free", "inbox": str(inbox.id), "content": "Hello"}
    recipients = [{"to": "+15551230001"}, {"to": "+15551230002"}]
    response = client.post("/api/v1/campaigns", {**body, "recipients": recipients}, format="json")
    assert response.status_code == 201
    assert response.json()["rejected"] == [
        {"index": 1, "to": "+15551230002", "code": "outside_customer_service_window"}
    ]
    assert response.json()["total"] == 1


def test_over_100000_recipients_is_a_400_and_nothing_is_stored(client, inbox):
    recipients = [{"to": "+1555"}] * (create.MAX_RECIPIENTS + 1)
    response = post(client, inbox, recipients)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "100,000" in response.content.decode()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"content": "x"}, "content"),  # both content and template
        ({"inbox": "00000000-0000-0000-0000-000000000000"}, "inbox"),
    ],
)
def test_a_request_that_is_not_a_campaign_is_a_400(client, inbox, fields, field):
    response = post(client, inbox, [{"to": "+15551230001"}], **fields)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_csv_upload(client, inbox, materialise_all):
    text = "to,2,1,customer_message_id\n+15551230001,A-1,Ana,c-1\nnope,,,\n+15551230002,A-2,Bo,\n"
    response = client.post(
        "/api/v1/campaigns",
        {
            "name": "CSV",
            "inbox": str(inbox.id),
            "template": '{"name": "order_shipped", "language": "en_US"}',
            "recipients": io.BytesIO(text.encode()),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["total"] == 2
    assert body["rejected"] == [{"index": 1, "to": "nope", "code": "invalid_address"}]
    materialise_all(body["id"])
    first = Message.objects.get(campaign_id=body["id"], to_address="+15551230001")
    assert first.customer_message_id == "c-1"
    texts = [p["text"] for p in first.template["components"][0]["parameters"]]
    assert texts == ["Ana", "A-1"]  # columns 1, 2 in order


def test_csv_without_a_to_column_is_a_400(client, inbox):
    response = client.post(
        "/api/v1/campaigns",
        {
            "name": "CSV",
            "inbox": str(inbox.id),
            "content": "Hi",
            "recipients": io.BytesIO(b"phone\n+15551230001\n"),
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert "`to` column" in response.content.decode()


def test_scheduled_campaign_waits(client, inbox, materialise_all):
    at = timezone.now() + timedelta(hours=1)
    response = post(client, inbox, [{"to": "+15551230001"}], scheduled_at=at.isoformat())
    body = response.json()
    assert body["status"] == "SCHEDULED"
    assert body["started_at"] is None
    materialise_all(body["id"])
    assert not Message.objects.exists()
    assert CampaignBatch.objects.get().materialised_at is None


def test_another_account_sees_nothing(client, other_client, inbox):
    campaign_id = post(client, inbox, [{"to": "+15551230001"}]).json()["id"]
    assert other_client.get(f"/api/v1/campaigns/{campaign_id}").status_code == 404
    assert other_client.post(f"/api/v1/campaigns/{campaign_id}/pause").status_code == 404
    assert other_client.get("/api/v1/campaigns").json()["results"] == []
    response = post(other_client, inbox, [{"to": "+15551230001"}])
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "inbox"
    assert client.get("/api/v1/campaigns/not-a-uuid").status_code == 404


def test_list_has_counts_in_a_constant_number_of_queries(client, inbox, materialise_all):
    def listed():
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/campaigns")
        assert response.status_code == 200
        return response.json()["results"], len(queries)

    campaign_id = post(client, inbox, [{"to": "+15551230001"}]).json()["id"]
    materialise_all(campaign_id)
    results, one = listed()
    for i in range(4):
        post(client, inbox, [{"to": f"+1555123100{i}"}, {"to": f"+1555123200{i}"}])
    results, five = listed()
    assert one == five
    assert len(results) == 5
    assert results[-1]["counts"]["QUEUED"] == 1
    assert results[0]["total"] == 2


def test_actions_move_the_state_and_refuse_the_impossible(client, inbox, materialise_all):
    campaign_id = post(client, inbox, [{"to": "+15551230001"}, {"to": "+15551230002"}]).json()["id"]
    materialise_all(campaign_id)
    url = f"/api/v1/campaigns/{campaign_id}"
    assert client.post(f"{url}/resume").status_code == 409
    assert client.post(f"{url}/pause").json()["status"] == "PAUSED"
    assert client.post(f"{url}/resume").json()["status"] == "RUNNING"
    cancelled = client.post(f"{url}/cancel").json()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["completed_at"] is not None
    assert cancelled["counts"]["FAILED"] == 2
    assert cancelled["counts"]["QUEUED"] == 0
    # Through the status service: stored as events, shown with the catalogue's explanation.
    message = Message.objects.filter(campaign_id=campaign_id).first()
    shown = client.get(f"/api/v1/messages/{message.id}").json()
    assert shown["status"] == "FAILED"
    assert shown["error"]["code"] == "cancelled"
    assert shown["error"]["title"] == "Campaign cancelled"
    assert StatusEvent.objects.filter(message=message, error_code="cancelled").count() == 1
    refused = client.post(f"{url}/pause")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "campaign_state_conflict"
