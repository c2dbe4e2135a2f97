import pytest

from inbox.models import Inbox

WA_CONFIG = {
    "phone_number_id": "106540352242922",
    "access_token": "secret-token",
    "app_secret": "app-secret",
    "verify_token": "verify-me",
}


def test_create_returns_201_with_webhook_url_and_capabilities(client, account):
    response = client.post(
        "/api/v1/inboxes",
        {"name": "Support", "channel_type": "whatsapp_cloud", "config": WA_CONFIG},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    inbox = Inbox.objects.get(id=body["id"])
    assert inbox.account == account and inbox.config == WA_CONFIG
    assert body["webhook_url"].endswith(f"/webhooks/whatsapp_cloud/{inbox.id}/")
    assert body["capabilities"] == {"sent": True, "delivered": True, "read": True, "failed": True}
    assert body["channel"] == "WHATSAPP"
    assert body["config"] == {"phone_number_id": "106540352242922"}
    assert body["secrets_set"] == ["access_token", "app_secret", "verify_token"]
    assert "secret-token" not in response.content.decode()


@pytest.mark.parametrize(
    ("channel_type", "config", "field"),
    [
        ("whatsapp_cloud", {**WA_CONFIG, "access_token": ""}, "config.access_token"),
        ("telegram", {"bot_token": "x"}, "config.secret_token"),
        ("twilio_sms", {"account_sid": "AC1", "auth_token": "t"}, "config.from_number"),
        ("api", {"webhook_url": "ftp://x", "hmac_secret": "s"}, "config.webhook_url"),
        (
            "email",
            {"smtp_host": "h", "smtp_port": 0, "from_address": "a@b.c", "webhook_token": "t"},
            "config.smtp_port",
        ),
        ("web_widget", {"colour": "red"}, "config.colour"),
        ("nope", {}, "channel_type"),
    ],
)
def test_create_validates_config_per_channel_type(client, channel_type, config, field):
    response = client.post(
        "/api/v1/inboxes",
        {"name": "X", "channel_type": channel_type, "config": config},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field
    assert field in error["message"]


def test_twilio_takes_messaging_service_sid_instead_of_from_number(client):
    response = client.post(
        "/api/v1/inboxes",
        {
            "name": "SMS",
            "channel_type": "twilio_sms",
            "config": {"account_sid": "AC1", "auth_token": "t", "messaging_service_sid": "MG1"},
        },
        format="json",
    )
    assert response.status_code == 201


def test_missing_name_is_400(client):
    response = client.post("/api/v1/inboxes", {"channel_type": "web_widget"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "name"


def test_list_and_retrieve_only_own_account(client, inbox, other_account, make_inbox):
    foreign = make_inbox(other_account)
    listed = client.get("/api/v1/inboxes").json()
    assert [i["id"] for i in listed["results"]] == [str(inbox.id)]
    assert client.get(f"/api/v1/inboxes/{inbox.id}").json()["id"] == str(inbox.id)
    for url in (f"/api/v1/inboxes/{foreign.id}", "/api/v1/inboxes/not-a-uuid"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_patch_merges_config_and_keeps_secrets_write_only(client, inbox):
    response = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        {"name": "Renamed", "config": {"access_token": "rotated", "waba_id": "123"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert "rotated" not in response.content.decode()
    inbox.refresh_from_db()
    assert inbox.name == "Renamed"
    assert inbox.config["access_token"] == "rotated"
    assert inbox.config["phone_number_id"] == "106540352242922"
    assert response.json()["config"]["waba_id"] == "123"


def test_patch_cannot_remove_a_required_key(client, inbox):
    response = client.patch(
        f"/api/v1/inboxes/{inbox.id}", {"config": {"app_secret": None}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "config.app_secret"


def test_patch_of_another_accounts_inbox_is_404(other_client, inbox):
    response = other_client.patch(f"/api/v1/inboxes/{inbox.id}", {"name": "x"}, format="json")
    assert response.status_code == 404


def test_inboxes_require_a_key(anon, inbox):
    assert anon.get("/api/v1/inboxes").status_code == 401
    assert anon.get(f"/api/v1/inboxes/{inbox.id}").status_code == 401
    assert anon.post("/api/v1/inboxes", {}, format="json").status_code == 401
