"""API-key brute force (issue #10 item 6): failures counted per real client address in the
shared cache, X-Forwarded-For only believed from configured proxies, a valid key never refused."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from tests.conftest import wait_for_fresh_window

URL = "/api/v1/inboxes"


@pytest.fixture(autouse=True)
def _steady_clock():
    wait_for_fresh_window(3600)  # every rate below is per hour


@pytest.fixture
def auth_rate():
    """Set the API-key failure rate for one test (DRF caches its settings)."""

    def set_rate(rate):
        override = override_settings(
            REST_FRAMEWORK={
                **settings.REST_FRAMEWORK,
                "DEFAULT_THROTTLE_RATES": {"auth_failure": rate},
            }
        )
        override.enable()
        api_settings.reload()
        overrides.append(override)

    overrides = []
    yield set_rate
    for override in overrides:
        override.disable()
    api_settings.reload()


def wrong_key_client(**extra):
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION="Bearer tm_wrong")
    return client


def test_rotating_x_forwarded_for_does_not_reset_the_count(db, auth_rate):
    auth_rate("5/hour")
    client = wrong_key_client()
    codes = [client.get(URL, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code for i in range(60)]
    assert codes == [401] * 5 + [429] * 55


def test_trusted_proxy_hops_pick_the_address_our_proxy_saw(db, auth_rate):
    auth_rate("2/hour")
    with override_settings(TICKMARK_TRUSTED_PROXIES=1):
        client = wrong_key_client()
        # What the client wrote (left) changes every time; what our proxy appended does not.
        codes = [
            client.get(URL, HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.7").status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 429, 429]
        # Another client behind the same proxy (same REMOTE_ADDR) is counted on its own.
        assert client.get(URL, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 401


def test_x_forwarded_for_is_ignored_without_proxies(db, auth_rate):
    auth_rate("2/hour")
    first = wrong_key_client(REMOTE_ADDR="192.0.2.1")
    for _ in range(2):
        assert first.get(URL, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 401
    assert first.get(URL, HTTP_X_FORWARDED_FOR="203.0.113.51").status_code == 429
    # Another real address is not affected by the first one's failures.
    other = wrong_key_client(REMOTE_ADDR="192.0.2.2")
    assert other.get(URL, HTTP_X_FORWARDED_FOR="203.0.113.50").status_code == 401


def test_a_valid_key_works_from_a_locked_out_address(api_key, auth_rate):
    auth_rate("3/hour")
    attacker = wrong_key_client()
    assert [attacker.get(URL).status_code for _ in range(5)] == [401, 401, 401, 429, 429]
    owner = APIClient()  # same address, 127.0.0.1
    owner.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    for _ in range(3):
        assert owner.get(URL).status_code == 200
    # ...and its successes do not reopen the address for guesses.
    assert attacker.get(URL).status_code == 429


def test_revoked_key_counts_as_a_failure(api_key, auth_rate):
    from django.utils import timezone

    from inbox.models import ApiKey

    auth_rate("1/hour")
    ApiKey.objects.update(revoked_at=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert client.get(URL).status_code == 401
    response = client.get(URL)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 3600


def test_two_clients_share_one_count(db, auth_rate):
    """Counted in the cache, not in the client or the view: any client from the address adds."""
    auth_rate("4/hour")
    clients = [wrong_key_client(), wrong_key_client()]
    codes = [clients[i % 2].get(URL).status_code for i in range(6)]
    assert codes == [401, 401, 401, 401, 429, 429]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (Redis cache)")
def test_counters_live_in_redis_for_every_process(db, auth_rate):
    """With REDIS_URL the count is in Redis, where every web process reads and adds to it."""
    import redis

    auth_rate("10/hour")
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    pattern = f"{prefix}:*ratelimit:auth_failure:*"
    assert list(raw.scan_iter(match=pattern)) == []
    client = wrong_key_client()
    for _ in range(3):
        assert client.get(URL).status_code == 401
    keys = list(raw.scan_iter(match=pattern))
    assert len(keys) == 1
    assert int(raw.get(keys[0])) == 3
    assert 0 < raw.ttl(keys[0]) <= 3600 + 60
    # Another process adding to the same key (here: this test, directly) is seen by the next
    # request: 3 + 7 = 10 is the limit, so the next failure is refused.
    raw.incrby(keys[0], 7)
    assert client.get(URL).status_code == 429


def test_cache_down_fails_open(db, api_key, auth_rate):
    """Redis unreachable: requests are neither refused nor broken (the limit is not counted)."""
    auth_rate("1/hour")
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=unreachable):
        client = wrong_key_client()
        assert [client.get(URL).status_code for _ in range(3)] == [401, 401, 401]
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        assert client.get(URL).status_code == 200


def test_a_hanging_cache_costs_one_timeout_not_one_per_request(db, auth_rate):
    """A cache that accepts connections but never answers: after the first timeout the limits
    pause for a few seconds instead of making every request wait."""
    import socket
    import time

    auth_rate("1/hour")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the kernel; nothing ever reads or answers
        port = silent.getsockname()[1]
        hanging = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{port}/0",
                "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            }
        }
        with override_settings(CACHES=hanging):
            client = wrong_key_client()
            started = time.monotonic()
            codes = [client.get(URL).status_code for _ in range(10)]
            elapsed = time.monotonic() - started
    assert codes == [401] * 10
    assert 0.5 <= elapsed < 3.0  # one timeout (0.5 s), not ten (5 s)
