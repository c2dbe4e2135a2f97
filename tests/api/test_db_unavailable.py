"""The database goes away for real: the API, the provider webhooks and the health endpoints
answer a JSON 503 with Retry-After (never an HTML 500), and work again once it is back."""

import time

import pytest
from django.db import connection
from django.test import Client

from tests.outage import database_down

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
]


@pytest.fixture(autouse=True)
def quick_pool():
    """A pool that gives up on a checkout after 1 s (10 s by default) keeps the test short."""
    pool = connection.settings_dict.get("OPTIONS", {}).get("pool")
    if not isinstance(pool, dict):
        yield
        return
    saved = pool.get("timeout")
    connection.close_pool()
    pool["timeout"] = 1
    yield
    connection.close_pool()
    pool["timeout"] = saved


def assert_503_json(response):
    assert response.status_code == 503, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) > 0
    return response.json()


def test_api_answers_json_503_with_retry_after_while_the_database_is_down(
    client, api_inbox, make_message
):
    message = make_message(api_inbox, to="customer-1")
    assert client.get("/api/v1/messages").status_code == 200
    with database_down():
        body = assert_503_json(client.get("/api/v1/messages"))
        assert body["error"]["code"] == "database_unavailable"
        # A lookup, which the hot path (inbox.api.hot) would answer: it hands the outage on.
        lookup = client.get(f"/api/v1/messages/{message.id}")
        assert assert_503_json(lookup)["error"]["code"] == "database_unavailable"
        # A valid send (the API key is cached by then, so a malformed body would be refused
        # with a 400 before anything needs the database).
        post = client.post(
            "/api/v1/messages",
            {"inbox": str(api_inbox.id), "to": "customer-1", "content": "Hi"},
            format="json",
        )
        assert assert_503_json(post)["error"]["code"] == "database_unavailable"
    # Back up: the API works again within seconds, by itself (pooled connections are checked on
    # checkout, so none that died with the outage is handed out; before that fix it answered
    # 500/503 for ~30 s). The pool's own reconnect may take a moment after the outage.
    deadline = time.monotonic() + 5
    while (status := client.get("/api/v1/messages").status_code) != 200:
        assert status == 503, status
        assert time.monotonic() < deadline, "still unavailable 5 s after the database came back"
        time.sleep(0.2)


def test_provider_webhook_and_health_answer_503_while_the_database_is_down(inbox):
    web = Client()
    url = f"/webhooks/whatsapp_cloud/{inbox.id}/"
    with database_down():
        body = assert_503_json(web.post(url, b"{}", content_type="application/json"))
        assert body["error"]["code"] == "unavailable"  # the ingestion view's own answer
        assert_503_json(web.get("/healthz/worker"))
        assert web.get("/healthz").status_code == 200  # liveness needs no database
        web.cookies["sessionid"] = "s" * 32  # reading the session needs the database
        page = web.get("/")
        assert page.status_code == 503
        assert page["Content-Type"].startswith("text/plain")
        assert page["Retry-After"]
