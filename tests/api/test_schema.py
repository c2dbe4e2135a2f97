"""The OpenAPI document is valid, served, and the API keeps every promise it makes (schemathesis)."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXPECTED_OPERATIONS = {
    ("get", "/api/v1/inboxes"),
    ("get", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns"),
    ("get", "/api/v1/campaigns/{campaign_id}"),
    ("post", "/api/v1/campaigns/{campaign_id}/pause"),
    ("post", "/api/v1/campaigns/{campaign_id}/resume"),
    ("post", "/api/v1/campaigns/{campaign_id}/cancel"),
    ("post", "/api/v1/inboxes"),
    ("get", "/api/v1/inboxes/{inbox_id}"),
    ("patch", "/api/v1/inboxes/{inbox_id}"),
    ("get", "/api/v1/messages"),
    ("post", "/api/v1/messages"),
    ("get", "/api/v1/messages/{message_id}"),
    ("get", "/api/v1/messages/{message_id}/events"),
    ("post", "/api/v1/messages/{message_id}/resend"),
    ("post", "/api/v1/messages/{message_id}/status"),
    ("get", "/api/v1/messages/status/{customer_message_id}"),
    ("get", "/api/v1/{family}/messages"),
    ("get", "/api/v1/{family}/messages/{message_id}"),
    ("get", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{conversation_id}/messages"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{webhook_id}"),
    ("delete", "/api/v1/webhooks/{webhook_id}"),
    ("get", "/api/v1/webhooks/{webhook_id}/deliveries"),
    ("get", "/api/v1/analytics/delivery"),
}


def generated_schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_is_valid_openapi_and_documents_every_endpoint():
    schema = generated_schema()
    validate_schema(schema)  # drf-spectacular's OpenAPI 3 JSON-schema validation
    operations = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert operations == EXPECTED_OPERATIONS
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKeyBearer"]["description"],
    }
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), (method, path)
            assert {"400", "401", "404"} <= set(operation["responses"]), (method, path)
            assert {"ApiKeyBearer": []} in operation["security"]


def test_schema_and_swagger_ui_are_served(anon, db):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    docs = anon.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_unknown_api_path_is_a_json_404(anon, db):
    response = anon.get("/api/v1/nothing/here/at/all")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- schemathesis: the API against its own schema, on PostgreSQL ------------------------------

app = get_wsgi_application()
api_schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_in_test_transaction():
    """Serve WSGI requests inside the test's transaction, as Django's test client does."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(wsgi_in_test_transaction, account, api_key, api_inbox, sms_inbox, make_message):
    """Real objects, so generated requests also reach the happy paths."""
    from statuses import services
    from statuses.models import WebhookSubscription

    message = make_message(api_inbox, to="customer-1", customer_message_id="known")
    services.message_status_report(message=message, status="failed", source="api", error_code="500")
    make_message(sms_inbox, to="+15551234567")
    WebhookSubscription.objects.create(account=account, url="https://example.com/h")
    return {"Authorization": f"Bearer {api_key}"}


@pytest.mark.slow
@api_schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case, seeded):
    case.call_and_validate(headers=seeded, checks=CHECKS)
