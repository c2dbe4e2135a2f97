"""API keys and inboxes are kept a few seconds per process (inbox/caches.py): never longer than
``ROW_CACHE_SECONDS``, dropped at once when changed here, and always per account."""

import time

from django.test import override_settings
from django.utils import timezone

from inbox.models import ApiKey

URL = "/api/v1/inboxes"


def test_a_key_revoked_in_this_process_is_refused_at_once(client):
    assert client.get(URL).status_code == 200  # cached now
    key = ApiKey.objects.get()
    key.revoked_at = timezone.now()
    key.save()
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


def test_a_key_deleted_in_this_process_is_refused_at_once(client):
    assert client.get(URL).status_code == 200
    ApiKey.objects.get().delete()
    assert client.get(URL).json()["error"]["code"] == "invalid_api_key"


@override_settings(ROW_CACHE_SECONDS=0.3)
def test_a_key_revoked_elsewhere_is_refused_once_the_entry_expires(client):
    assert client.get(URL).status_code == 200
    # Another process revokes it: no signal reaches this one.
    ApiKey.objects.update(revoked_at=timezone.now())
    time.sleep(0.4)
    assert client.get(URL).json()["error"]["code"] == "revoked_api_key"


@override_settings(ROW_CACHE_SECONDS=0)
def test_zero_seconds_turns_caching_off(client, django_assert_num_queries):
    client.get(URL)
    with django_assert_num_queries(2):  # the key again, the list
        assert client.get(URL).status_code == 200


def test_another_accounts_cached_inbox_stays_missing(
    client, other_client, other_account, make_inbox
):
    theirs = make_inbox(
        other_account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+15550001111"
    )
    body = {"inbox": str(theirs.id), "to": "+16505550001", "content": "hi"}
    assert other_client.post("/api/v1/messages", body, format="json").status_code == 202
    response = client.post("/api/v1/messages", body, format="json")  # theirs is cached now
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "inbox"


def test_a_webhooks_inbox_is_kept_and_dropped_when_it_changes(inbox, django_assert_num_queries):
    from inbox import caches

    assert caches.inboxes_by_id({inbox.id})[inbox.id] == inbox  # read once
    with django_assert_num_queries(0):
        kept = caches.inboxes_by_id({inbox.id})[inbox.id]
    kept.config["app_secret"] = "changed in this copy only"
    assert caches.inboxes_by_id({inbox.id})[inbox.id].config == inbox.config  # nothing shared
    inbox.config = {**inbox.config, "verify_token": "rotated"}
    inbox.save()  # a change here drops the entry at once
    with django_assert_num_queries(1):
        fresh = caches.inboxes_by_id({inbox.id})[inbox.id]
    assert fresh.config["verify_token"] == "rotated"
    inbox.delete()
    assert caches.inboxes_by_id({inbox.id}) == {}
