from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription


def test_create_shows_the_secret_once(client, account):
    response = client.post(
        "/api/v1/webhooks",
        {"url": "https://example.com/hook", "events": ["message.status_changed"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    subscription = WebhookSubscription.objects.get(id=body["id"])
    assert body["secret"] == subscription.secret and subscription.account == account
    assert body["events"] == ["message.status_changed"] and body["is_active"] is True
    listed = client.get("/api/v1/webhooks").json()["results"]
    assert [w["id"] for w in listed] == [subscription.id]
    assert "secret" not in listed[0]
    assert "secret" not in client.get(f"/api/v1/webhooks/{subscription.id}").json()


def test_create_defaults_to_every_event(client):
    body = client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x"}, format="json").json()
    assert body["events"] == ["message.created", "message.status_changed"]


def test_create_validation(client):
    bad_event = client.post(
        "/api/v1/webhooks", {"url": "https://e.com", "events": ["message.eaten"]}, format="json"
    )
    assert bad_event.status_code == 400 and bad_event.json()["error"]["field"] == "events[0]"
    bad_url = client.post("/api/v1/webhooks", {"url": "not a url"}, format="json")
    assert bad_url.status_code == 400 and bad_url.json()["error"]["field"] == "url"
    empty = client.post("/api/v1/webhooks", {"url": "https://e.com", "events": []}, format="json")
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "events"


def test_delete(client, account):
    subscription = WebhookSubscription.objects.create(account=account, url="https://e.com")
    assert client.delete(f"/api/v1/webhooks/{subscription.id}").status_code == 204
    assert not WebhookSubscription.objects.exists()


def test_deliveries_lists_attempts_newest_first(client, account):
    subscription = WebhookSubscription.objects.create(account=account, url="https://e.com")
    event = OutgoingEvent.objects.create(
        subscription=subscription, event_type="message.created", payload={}
    )
    OutgoingAttempt.objects.create(event=event, http_status=500, error="HTTP 500")
    OutgoingAttempt.objects.create(event=event, http_status=200)
    response = client.get(f"/api/v1/webhooks/{subscription.id}/deliveries")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["http_status"] for r in results] == [200, 500]
    assert results[1]["event_type"] == "message.created" and results[1]["error"] == "HTTP 500"


def test_other_accounts_subscription_is_404(other_client, anon, account):
    subscription = WebhookSubscription.objects.create(account=account, url="https://e.com")
    for url in (
        f"/api/v1/webhooks/{subscription.id}",
        f"/api/v1/webhooks/{subscription.id}/deliveries",
    ):
        assert other_client.get(url).status_code == 404
        assert anon.get(url).status_code == 401
    assert other_client.delete(f"/api/v1/webhooks/{subscription.id}").status_code == 404
    assert other_client.get("/api/v1/webhooks/99999999999999999999").status_code == 404
    assert WebhookSubscription.objects.exists()
    assert anon.post("/api/v1/webhooks", {}, format="json").status_code == 401
