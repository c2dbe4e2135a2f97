"""``max_send_rate`` on the inbox API (DESIGN §16): set on create, changed or reset by PATCH,
refused with a clear error when it is not a sensible rate."""

import pytest

from inbox.models import Inbox

WA_CONFIG = {
    "phone_number_id": "106540352242922",
    "access_token": "secret-token",
    "app_secret": "app-secret",
    "verify_token": "verify-me",
}


def create(client, **extra):
    return client.post(
        "/api/v1/inboxes",
        {"name": "Support", "channel_type": "whatsapp_cloud", "config": WA_CONFIG, **extra},
        format="json",
    )


def test_a_new_inbox_keeps_to_its_channels_documented_rate_unless_told_otherwise(client):
    default = create(client)
    custom = create(client, max_send_rate=250)

    assert default.status_code == custom.status_code == 201
    assert (default.json()["max_send_rate"], default.json()["send_rate"]) == (None, 80.0)
    assert (custom.json()["max_send_rate"], custom.json()["send_rate"]) == (250.0, 250.0)
    assert Inbox.objects.get(id=custom.json()["id"]).max_send_rate == 250.0


def test_patch_changes_the_rate_and_null_brings_back_the_default(client):
    inbox_id = create(client).json()["id"]
    url = f"/api/v1/inboxes/{inbox_id}"

    changed = client.patch(url, {"max_send_rate": 12.5}, format="json")
    renamed = client.patch(url, {"name": "Renamed"}, format="json")  # the rate stays
    reset = client.patch(url, {"max_send_rate": None}, format="json")

    assert changed.json()["send_rate"] == 12.5
    assert renamed.json()["max_send_rate"] == 12.5
    assert (reset.json()["max_send_rate"], reset.json()["send_rate"]) == (None, 80.0)
    assert Inbox.objects.get(id=inbox_id).max_send_rate is None


@pytest.mark.parametrize("rate", [0, -1, 10_001, "fast", [5]])
def test_a_rate_that_is_not_a_sensible_number_is_refused(client, rate):
    created = create(client, max_send_rate=rate)
    inbox_id = create(client).json()["id"]
    patched = client.patch(f"/api/v1/inboxes/{inbox_id}", {"max_send_rate": rate}, format="json")

    for response in (created, patched):
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("validation_error", "max_send_rate")
    assert Inbox.objects.get(id=inbox_id).max_send_rate is None
    assert Inbox.objects.count() == 1


def test_an_unpaced_channel_says_so(client):
    response = client.post(
        "/api/v1/inboxes",
        {
            "name": "Integration",
            "channel_type": "api",
            "config": {"webhook_url": "https://example.com/hook", "hmac_secret": "s"},
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["send_rate"] is None
