"""Password guessing on the sign-in form (issue #10 item 6): failures counted per username and
per client address in the shared cache; a 429 page that never tells whether a username exists."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from tests.conftest import wait_for_fresh_window

pytestmark = pytest.mark.django_db

URL = "/login/"
REFUSED = "Too many failed sign-in attempts."


@pytest.fixture(autouse=True)
def _steady_clock():
    wait_for_fresh_window(900)  # the default login windows are 15 minutes


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # Dozens of sign-ins per test: the production hasher's cost is not what is tested here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="correct horse")


def sign_in(username, password, address="192.0.2.10", **headers):
    client = Client(REMOTE_ADDR=address)
    response = client.post(URL, {"username": username, "password": password}, **headers)
    return response, client


def signed_in(client):
    return "_auth_user_id" in client.session


def test_five_failures_lock_the_username_even_for_the_right_password(alice):
    for i in range(5):
        response, _ = sign_in("alice", f"guess {i}", address=f"192.0.2.{i}")
        assert response.status_code == 200
        assert REFUSED not in response.content.decode()
    # From yet another address, with the right password: refused, and not signed in.
    response, client = sign_in("alice", "correct horse", address="192.0.2.99")
    assert response.status_code == 429
    assert REFUSED in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 900
    assert not signed_in(client)
    # Other usernames are unaffected.
    get_user_model().objects.create_user("bob", password="bob's password")
    response, client = sign_in("bob", "bob's password", address="192.0.2.99")
    assert response.status_code == 302 and signed_in(client)


def test_username_match_ignores_case(alice):
    for i in range(5):
        assert sign_in("ALICE" if i % 2 else "alice", "nope")[0].status_code == 200
    assert sign_in("Alice", "nope")[0].status_code == 429


def test_an_unknown_username_answers_exactly_like_a_known_one(alice):
    def attempts(username):
        pages = []
        for _ in range(6):
            response, _ = sign_in(username, "wrong", address="192.0.2.50")
            pages.append((response.status_code, _error_text(response)))
        return pages

    known = attempts("alice")
    wait_for_fresh_window(900)
    unknown = attempts("nobody-by-this-name")
    assert known == unknown
    assert [status for status, _ in known] == [200] * 5 + [429]


def test_twenty_failures_lock_the_address(db):
    users = get_user_model().objects
    carol = users.create_user("carol", password="carol's password")
    codes = [sign_in(f"user{i}", "wrong", address="198.51.100.4")[0].status_code for i in range(20)]
    assert codes == [200] * 20
    response, client = sign_in(carol.username, "carol's password", address="198.51.100.4")
    assert response.status_code == 429 and not signed_in(client)
    # The same user from another address gets in.
    response, client = sign_in(carol.username, "carol's password", address="198.51.100.5")
    assert response.status_code == 302 and signed_in(client)


def test_rotating_x_forwarded_for_does_not_reset_the_address_count(db):
    for i in range(20):
        response, _ = sign_in(f"u{i}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        assert response.status_code == 200
    response, _ = sign_in("u99", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.200")
    assert response.status_code == 429


@override_settings(TICKMARK_TRUSTED_PROXIES=1)
def test_behind_a_trusted_proxy_each_client_is_counted_apart(db):
    for i in range(20):
        response, _ = sign_in(f"u{i}", "wrong", HTTP_X_FORWARDED_FOR="evil, 203.0.113.1")
        assert response.status_code == 200
    assert sign_in("u20", "wrong", HTTP_X_FORWARDED_FOR="x, 203.0.113.1")[0].status_code == 429
    assert sign_in("u21", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.2")[0].status_code == 200


def test_signing_in_resets_the_username_count(alice):
    for _ in range(4):
        assert sign_in("alice", "typo")[0].status_code == 200
    response, client = sign_in("alice", "correct horse")
    assert response.status_code == 302 and signed_in(client)
    for _ in range(4):
        assert sign_in("alice", "typo")[0].status_code == 200
    assert sign_in("alice", "correct horse")[0].status_code == 302


@override_settings(TICKMARK_LOGIN_USERNAME_RATE="2/hour", TICKMARK_LOGIN_ADDRESS_RATE="off")
def test_rates_come_from_settings(alice):
    wait_for_fresh_window(3600)
    assert [sign_in("alice", "x")[0].status_code for _ in range(3)] == [200, 200, 429]
    assert [sign_in(f"n{i}", "x")[0].status_code for i in range(30)] == [200] * 30


def test_a_missing_field_is_not_a_counted_attempt(alice):
    client = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(10):
        assert client.post(URL, {"username": "alice"}).status_code == 200
    response, client = sign_in("alice", "correct horse")
    assert response.status_code == 302 and signed_in(client)


def _error_text(response):
    from html import unescape

    from django.utils.html import strip_tags

    # The page's text around the form, minus the minutes left (the two runs are apart in time).
    text = unescape(strip_tags(response.content.decode()))
    return re.sub(r"\d+", "N", " ".join(line.strip() for line in text.splitlines() if line.strip()))


def test_the_admin_sign_in_shares_the_counts():
    get_user_model().objects.create_superuser("root", password="root password")
    admin = Client(REMOTE_ADDR="192.0.2.77")
    for i in range(5):
        response = admin.post("/admin/login/", {"username": "root", "password": f"guess {i}"})
        assert response.status_code == 200
        assert REFUSED not in response.content.decode()
    # Refused on both forms now, right password or not.
    response = admin.post("/admin/login/", {"username": "root", "password": "root password"})
    assert REFUSED in response.content.decode()
    assert "_auth_user_id" not in admin.session
    assert sign_in("root", "root password")[0].status_code == 429
