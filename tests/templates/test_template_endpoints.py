"""Template REST endpoints against a local fake Graph API (DESIGN §13): list, sync, create,
delete — the exact provider calls, paging followed, the token sent, errors passed through."""

import pytest

from inbox.models import Template
from tests.fakes.recorder import Reply
from tests.templates.conftest import WABA_ID

pytestmark = pytest.mark.django_db

COLLECTION = f"/v21.0/{WABA_ID}/message_templates"
FIELDS = "id,name,language,status,category,components,rejected_reason,quality_score"


def graph_template(name, id_, status="APPROVED", category="UTILITY", components=None, **extra):
    return {
        "id": id_,
        "name": name,
        "language": "en_US",
        "status": status,
        "category": category,
        "components": components or [{"type": "BODY", "text": "Hello {{1}}, welcome to {{2}}."}],
        **extra,
    }


def test_sync_follows_paging_to_the_end_with_the_bearer_token(client, wa_inbox, graph):
    next_url = f"{graph.url}{COLLECTION}?fields={FIELDS}&limit=100&after=QVFIUm"
    graph.queue(
        Reply(
            200,
            {
                "data": [
                    graph_template("welcome", "111"),
                    graph_template(
                        "order_update",
                        "222",
                        components=[
                            {"type": "HEADER", "format": "TEXT", "text": "Order {{order}}"},
                            {"type": "BODY", "text": "Hi {{name}}, {{order}} ships {{day}}."},
                            {"type": "FOOTER", "text": "Reply STOP to opt out"},
                        ],
                        quality_score={"score": "GREEN", "date": 1767225600},
                        parameter_format="NAMED",
                    ),
                ],
                "paging": {"cursors": {"before": "a", "after": "QVFIUm"}, "next": next_url},
            },
        ),
        Reply(
            200,
            {
                "data": [
                    graph_template(
                        "spring_sale",
                        "333",
                        status="REJECTED",
                        category="MARKETING",
                        rejected_reason="PROMOTIONAL",
                        components=[
                            {"type": "HEADER", "format": "IMAGE"},
                            {"type": "BODY", "text": "Sale!"},
                        ],
                    )
                ],
                "paging": {"cursors": {"before": "QVFIUm", "after": "end"}},
            },
        ),
    )

    response = client.post(f"/api/v1/inboxes/{wa_inbox.id}/templates/sync")

    assert response.status_code == 200, response.content
    assert response.json() == {"synced": 3, "created": 3, "updated": 0, "removed": 0}
    first, second = graph.requests
    assert (first.method, first.path) == ("GET", COLLECTION)
    assert first.query == {"fields": [FIELDS], "limit": ["100"]}
    assert (second.method, second.path) == ("GET", COLLECTION)
    assert second.query["after"] == ["QVFIUm"]
    for request in graph.requests:
        assert request.headers["authorization"] == "Bearer test-access-token"
    stored = {t.name: t for t in Template.objects.filter(inbox=wa_inbox)}
    assert (stored["welcome"].header_params, stored["welcome"].body_params) == (0, 2)
    named = stored["order_update"]
    assert (named.header_params, named.body_params, named.quality_score) == (1, 3, "GREEN")
    rejected = stored["spring_sale"]
    assert (rejected.status, rejected.rejected_reason, rejected.header_params) == (
        "REJECTED",
        "PROMOTIONAL",
        1,  # a media header takes one parameter: its link
    )
    assert rejected.provider_template_id == "333"


def test_sync_again_counts_updates_and_marks_templates_gone_upstream_deleted(
    client, wa_inbox, graph, make_template
):
    make_template(wa_inbox, "welcome", provider_template_id="111", status="PENDING")
    make_template(wa_inbox, "old_promo", provider_template_id="999")
    unchanged = graph_template("same", "444")
    make_template(
        wa_inbox,
        "same",
        provider_template_id="444",
        components=unchanged["components"],
        header_params=0,
        body_params=2,
    )
    graph.queue(Reply(200, {"data": [graph_template("welcome", "111"), unchanged]}))

    response = client.post(f"/api/v1/inboxes/{wa_inbox.id}/templates/sync")

    assert response.json() == {"synced": 2, "created": 0, "updated": 1, "removed": 1}
    assert Template.objects.get(name="welcome").status == "APPROVED"
    assert Template.objects.get(name="old_promo").status == "DELETED"


def test_a_next_page_on_another_host_is_not_followed(client, wa_inbox, graph):
    graph.queue(
        Reply(
            200,
            {
                "data": [graph_template("welcome", "111")],
                "paging": {"next": f"http://169.254.169.254{COLLECTION}?after=x"},
            },
        )
    )

    response = client.post(f"/api/v1/inboxes/{wa_inbox.id}/templates/sync")

    assert response.status_code == 400
    assert response.json()["error"]["provider_code"] == "bad_paging"
    assert len(graph.requests) == 1  # the token never went to the other host
    assert not Template.objects.exists()


def test_create_posts_exactly_the_documented_body_and_answers_the_provider_status(
    client, wa_inbox, graph
):
    components = [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
    ]
    graph.queue(Reply(200, {"id": "594425479261596", "status": "PENDING", "category": "UTILITY"}))

    response = client.post(
        "/api/v1/templates",
        {
            "inbox": str(wa_inbox.id),
            "name": "order_update",
            "language": "en_US",
            "category": "UTILITY",
            "components": components,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    (request,) = graph.requests
    assert (request.method, request.path) == ("POST", COLLECTION)
    assert request.headers["authorization"] == "Bearer test-access-token"
    assert request.json() == {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": components,
    }
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["provider_template_id"] == "594425479261596"
    assert body["parameters"] == {"header": 1, "body": 2}
    assert body["inbox"] == str(wa_inbox.id)


@pytest.mark.parametrize("name", ["Order Update", "order-update", "", "x" * 513, "naïve"])
def test_a_bad_name_is_refused_before_any_provider_call(client, wa_inbox, graph, name):
    response = client.post(
        "/api/v1/templates",
        {
            "inbox": str(wa_inbox.id),
            "name": name,
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi"}],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "name"
    assert graph.requests == []


def test_a_provider_refusal_is_passed_through_with_its_code_and_message(client, wa_inbox, graph):
    graph.queue(
        Reply(
            400,
            {
                "error": {
                    "message": "Invalid parameter",
                    "type": "OAuthException",
                    "code": 100,
                    "error_subcode": 2388023,
                    "error_user_title": "Message template language is being deleted",
                    "error_user_msg": "New English content can't be added while the existing "
                    "English content is being deleted.",
                    "fbtrace_id": "AbCdEf",
                }
            },
        )
    )

    response = client.post(
        "/api/v1/templates",
        {
            "inbox": str(wa_inbox.id),
            "name": "order_update",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi"}],
        },
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "provider_error"
    assert error["provider_code"] == "100/2388023"
    assert "existing English content is being deleted" in error["provider_message"]
    assert "language is being deleted" in error["message"]
    assert not Template.objects.exists()


def test_an_unreachable_provider_is_a_502(client, account, make_inbox, closed_port):
    inbox = make_inbox(
        account,
        "whatsapp_cloud",
        waba_id=WABA_ID,
        api_base_url=f"http://127.0.0.1:{closed_port}",
    )

    response = client.post(f"/api/v1/inboxes/{inbox.id}/templates/sync")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "provider_unreachable"


def test_delete_calls_the_documented_url_and_keeps_the_template_as_deleted(
    client, wa_inbox, graph, make_template
):
    template = make_template(wa_inbox, "order_update", provider_template_id="594425479261596")
    graph.queue(Reply(200, {"success": True}))

    response = client.delete(f"/api/v1/templates/{template.id}")

    assert response.status_code == 204
    (request,) = graph.requests
    assert (request.method, request.path) == ("DELETE", COLLECTION)
    assert request.query == {"name": ["order_update"], "hsm_id": ["594425479261596"]}
    assert request.headers["authorization"] == "Bearer test-access-token"
    template.refresh_from_db()
    assert template.status == "DELETED"


def test_a_refused_delete_changes_nothing(client, wa_inbox, graph, make_template):
    template = make_template(wa_inbox)
    graph.queue(Reply(400, {"error": {"message": "Template not found", "code": 100}}))

    response = client.delete(f"/api/v1/templates/{template.id}")

    assert response.status_code == 400
    assert response.json()["error"]["provider_code"] == "100"
    template.refresh_from_db()
    assert template.status == "APPROVED"


def test_list_filters_and_shape(client, wa_inbox, make_template, account, make_inbox):
    make_template(wa_inbox, "order_update")
    make_template(wa_inbox, "spring_sale", category="MARKETING", status="PAUSED")
    make_template(wa_inbox, "login_code", category="AUTHENTICATION", status="REJECTED")
    other_inbox = make_inbox(account, "whatsapp_cloud", waba_id="2")
    make_template(other_inbox, "order_update")

    def names(query):
        response = client.get(f"/api/v1/templates{query}")
        assert response.status_code == 200, response.content
        return sorted(t["name"] for t in response.json()["results"])

    assert names("") == ["login_code", "order_update", "order_update", "spring_sale"]
    assert names(f"?inbox={wa_inbox.id}") == ["login_code", "order_update", "spring_sale"]
    assert names("?status=PAUSED,REJECTED") == ["login_code", "spring_sale"]
    assert names("?category=MARKETING") == ["spring_sale"]
    assert names("?name=order") == ["order_update", "order_update"]
    item = client.get(f"/api/v1/templates?inbox={wa_inbox.id}&name=order_update").json()["results"][
        0
    ]
    assert set(item) == {
        "id",
        "inbox",
        "name",
        "language",
        "category",
        "status",
        "quality_score",
        "rejected_reason",
        "components",
        "parameters",
        "provider_template_id",
        "updated_at",
    }
    assert (item["status"], item["category"], item["quality_score"]) == (
        "APPROVED",
        "UTILITY",
        "UNKNOWN",
    )
    assert item["parameters"] == {"header": 1, "body": 2}
    bad = client.get("/api/v1/templates?status=approved_ish")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"


def test_another_accounts_templates_are_not_found(other_client, wa_inbox, graph, make_template):
    template = make_template(wa_inbox)

    assert other_client.get("/api/v1/templates").json()["results"] == []
    assert other_client.get(f"/api/v1/templates/{template.id}").status_code == 404
    assert other_client.delete(f"/api/v1/templates/{template.id}").status_code == 404
    assert other_client.post(f"/api/v1/inboxes/{wa_inbox.id}/templates/sync").status_code == 404
    created = other_client.post(
        "/api/v1/templates",
        {
            "inbox": str(wa_inbox.id),
            "name": "x",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi"}],
        },
        format="json",
    )
    assert created.status_code == 400
    assert created.json()["error"]["field"] == "inbox"
    assert graph.requests == []
    template.refresh_from_db()
    assert template.status == "APPROVED"


def test_360dialog_sync_pages_by_offset_and_deletes_by_name(client, account, make_inbox, graph):
    inbox = make_inbox(
        account, "whatsapp_360dialog", api_key="d360-key", webhook_token="t", api_base_url=graph.url
    )

    def page(names, total):
        return {
            "count": len(names),
            "total": total,
            "waba_templates": [
                {
                    "name": n,
                    "language": "en",
                    "status": "approved",
                    "category": "UTILITY",
                    "components": [{"type": "BODY", "text": "Hi {{1}}"}],
                    "namespace": "ns",
                    "rejected_reason": "NONE",
                }
                for n in names
            ],
        }

    graph.queue(Reply(200, page(["a", "b"], 3)), Reply(200, page(["c"], 3)))

    response = client.post(f"/api/v1/inboxes/{inbox.id}/templates/sync")

    assert response.json() == {"synced": 3, "created": 3, "updated": 0, "removed": 0}
    first, second = graph.requests
    assert (first.path, first.query) == (
        "/v1/configs/templates",
        {"limit": ["100"], "offset": ["0"]},
    )
    assert second.query["offset"] == ["2"]
    assert all(r.headers["d360-api-key"] == "d360-key" for r in graph.requests)
    template = Template.objects.get(inbox=inbox, name="b")
    assert (template.status, template.rejected_reason) == ("APPROVED", "")

    graph.queue(Reply(200, {"meta": {"success": True}}))
    assert client.delete(f"/api/v1/templates/{template.id}").status_code == 204
    assert (graph.requests[-1].method, graph.requests[-1].path) == (
        "DELETE",
        "/v1/configs/templates/b",
    )


def test_templates_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/templates" in schema["paths"]
    assert "/api/v1/inboxes/{inbox_id}/templates/sync" in schema["paths"]
    assert "/api/v1/templates/{template_id}" in schema["paths"]


def test_an_inbox_without_templates_says_why(client, account, make_inbox, graph):
    sms = make_inbox(
        account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+15550001111"
    )
    no_waba = make_inbox(account, "whatsapp_cloud", api_base_url=graph.url)

    refused = client.post(f"/api/v1/inboxes/{sms.id}/templates/sync")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "templates_unavailable"
    missing = client.post(f"/api/v1/inboxes/{no_waba.id}/templates/sync")
    assert missing.status_code == 409
    assert "waba_id" in missing.json()["error"]["message"]
    assert graph.requests == []
