import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.test import APIClient

from inbox.models import ApiKey, Membership
from tests.conftest import wait_for_fresh_window

URL = "/api/v1/inboxes"


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_missing_key_is_401_json(anon, db):
    response = anon.get(URL)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_invalid_key_is_401(anon, db):
    anon.credentials(HTTP_AUTHORIZATION="Bearer tm_nope")
    assert_error(anon.get(URL), 401, "invalid_api_key")


def test_malformed_authorization_is_401(anon, db):
    anon.credentials(HTTP_AUTHORIZATION="Bearer a b")
    assert_error(anon.get(URL), 401, "invalid_api_key")


def test_revoked_key_is_401(anon, account, api_key):
    from django.utils import timezone

    ApiKey.objects.update(revoked_at=timezone.now())
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert_error(anon.get(URL), 401, "revoked_api_key")


def test_x_api_key_header(anon, api_key):
    anon.credentials(HTTP_X_API_KEY=api_key)
    assert anon.get(URL).status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(client, django_assert_num_queries):
    client.get(URL)
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the list; key cached (inbox.caches), no UPDATE yet
        assert client.get(URL).status_code == 200
    assert ApiKey.objects.get().last_used_at == first


@override_settings(
    REST_FRAMEWORK={
        **__import__("django.conf").conf.settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"auth_failure": "3/min"},
    }
)
def test_failed_attempts_are_throttled_per_ip(anon, api_key):
    from rest_framework.settings import api_settings

    api_settings.reload()
    wait_for_fresh_window(60, margin=2)  # counts are per clock minute
    try:
        anon.credentials(HTTP_AUTHORIZATION="Bearer tm_wrong")
        for _ in range(3):
            assert anon.get(URL).status_code == 401
        response = anon.get(URL)
        assert_error(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
        # A valid key is never refused, even from that address (issue #10 item 6).
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        assert anon.get(URL).status_code == 200
    finally:
        api_settings.reload()


def test_session_of_an_agent_acts_for_its_account(account, inbox):
    user = User.objects.create_user("agent", password="pw")
    Membership.objects.create(user=user, account=account)
    browser = APIClient()
    browser.force_login(user)
    response = browser.get(URL)
    assert response.status_code == 200
    assert [i["id"] for i in response.json()["results"]] == [str(inbox.id)]
    html = browser.get(URL, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and b"<html" in html.content


@pytest.mark.django_db
def test_session_without_membership_is_401():
    user = User.objects.create_user("stranger", password="pw")
    browser = APIClient()
    browser.force_login(user)
    assert_error(browser.get(URL), 401, "not_authenticated")
