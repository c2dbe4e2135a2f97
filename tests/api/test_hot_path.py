"""The hot path (inbox/api/hot.py) answers exactly as the full API does, or not at all.

Every request here is made twice: through the production middleware chain, where
``HotApiMiddleware`` may answer a message lookup or a send before DRF, and through the same
chain without it. Status, every header and the body must be the same. Each case also says
which door must have answered, so a hot path that never answers cannot pass as "equal".
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import ApiKey, Message
from statuses.machine import Status
from tests.api.conftest import make_key

HOT = "inbox.api.hot.HotApiMiddleware"


def full_chain(settings) -> None:
    settings.MIDDLEWARE = [name for name in django_settings.MIDDLEWARE if name != HOT]


def call(settings, method: str, path: str, *, hot: bool | None = None, **kwargs):
    """The response through the chain with the hot path (``hot=True``: only the chain without it
    may run it; ``None``: as configured)."""
    if hot is False:
        full_chain(settings)
    assert (HOT in settings.MIDDLEWARE) is (hot is not False)
    client = APIClient()  # a new client loads the middleware as configured now
    return getattr(client, method)(path, **kwargs)


def answered_by_hot_path(response) -> bool:
    return getattr(response, "hot_path", False)


def same_answer(fast, full, ignore_body_keys=()):
    assert fast.status_code == full.status_code
    ignore = {"Content-Length"} if ignore_body_keys else set()
    assert {k: v for k, v in fast.headers.items() if k not in ignore} == {
        k: v for k, v in full.headers.items() if k not in ignore
    }
    if not ignore_body_keys:
        assert fast.content == full.content
        return
    a, b = json.loads(fast.content), json.loads(full.content)
    assert a.keys() == b.keys()
    assert {k: v for k, v in a.items() if k not in ignore_body_keys} == {
        k: v for k, v in b.items() if k not in ignore_body_keys
    }


@pytest.fixture
def key(account):
    return make_key(account)


@pytest.fixture
def message(make_message, inbox):
    return make_message(inbox, status=Status.QUEUED)


def lookup_both(settings, path, **headers):
    fast = call(settings, "get", path, **headers)
    full = call(settings, "get", path, hot=False, **headers)
    return fast, full


@pytest.mark.parametrize(
    "headers",
    [
        {"auth": "bearer"},
        {"auth": "x-api-key"},
        {"auth": "bearer", "HTTP_ACCEPT": "application/json"},
        {"auth": "bearer", "HTTP_ACCEPT": "*/*"},
    ],
    ids=["bearer", "x-api-key", "accept-json", "accept-any"],
)
def test_a_lookup_is_answered_by_the_hot_path_exactly_as_by_the_api(
    settings, key, message, headers
):
    headers = dict(headers)
    auth = headers.pop("auth")
    if auth == "bearer":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    else:
        headers["HTTP_X_API_KEY"] = key
    fast, full = lookup_both(settings, f"/api/v1/messages/{message.id}", **headers)
    assert answered_by_hot_path(fast) and not answered_by_hot_path(full)
    assert fast.status_code == 200 and fast["Retry-After"] == "2"  # queued: poll again soon
    same_answer(fast, full)


def test_a_terminal_message_has_no_polling_hint_on_either_door(settings, key, make_message, inbox):
    message = make_message(inbox, status=Status.READ)
    fast, full = lookup_both(
        settings, f"/api/v1/messages/{message.id}", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert answered_by_hot_path(fast)
    assert "Retry-After" not in fast.headers
    same_answer(fast, full)


@pytest.mark.parametrize(
    "case",
    [
        "no-credentials",
        "wrong-key",
        "revoked-key",
        "malformed-header",
        "another-account",
        "missing-message",
        "not-a-uuid",
        "trailing-slash",
        "query-string",
        "browsable-api",
    ],
)
def test_every_other_lookup_is_left_to_the_api(
    settings, account, other_account, key, message, make_inbox, make_message, case
):
    path = f"/api/v1/messages/{message.id}"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if case == "no-credentials":
        headers = {}
    elif case == "wrong-key":
        headers = {"HTTP_AUTHORIZATION": "Bearer not-a-key"}
    elif case == "revoked-key":
        ApiKey.objects.filter(account=account).update(revoked_at=timezone.now())
    elif case == "malformed-header":
        headers = {"HTTP_AUTHORIZATION": "Bearer two words"}
    elif case == "another-account":
        theirs = make_message(make_inbox(other_account), to="+16505070000")
        path = f"/api/v1/messages/{theirs.id}"
    elif case == "missing-message":
        path = "/api/v1/messages/00000000-0000-4000-8000-000000000000"
    elif case == "not-a-uuid":
        path = "/api/v1/messages/0000000000000000000000000000000000"
    elif case == "trailing-slash":
        path += "/"
    elif case == "query-string":
        path += "?format=json"
    elif case == "browsable-api":
        headers["HTTP_ACCEPT"] = "text/html"
    fast, full = lookup_both(settings, path, **headers)
    assert not answered_by_hot_path(fast)
    assert fast.status_code != 200 or case in ("query-string", "browsable-api")
    if case == "browsable-api":  # an HTML page with a fresh CSRF token each time
        assert fast.status_code == full.status_code == 200
        assert fast["Content-Type"] == full["Content-Type"] == "text/html; charset=utf-8"
        return
    same_answer(fast, full)


# --- sends ---------------------------------------------------------------------------------

CREATED_KEYS = ("id", "conversation", "queued_at", "status_updated_at", "created_at")


def send(settings, key, body, *, hot=None, content_type="application/json", raw=None):
    return call(
        settings,
        "post",
        "/api/v1/messages",
        hot=hot,
        data=raw if raw is not None else json.dumps(body),
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def message_body(inbox, **fields) -> dict:
    return {"inbox": str(inbox.id), "to": "+15550002222", "content": "Hi", **fields}


def test_a_send_is_answered_by_the_hot_path_as_by_the_api(settings, key, sms_inbox):
    body = message_body(sms_inbox, content=" Hi ", customer_message_id="a")
    fast = send(settings, key, body)
    full = send(settings, key, {**body, "customer_message_id": "b"}, hot=False)
    assert answered_by_hot_path(fast) and not answered_by_hot_path(full)
    assert fast.status_code == 202
    same_answer(fast, full, ignore_body_keys=(*CREATED_KEYS, "customer_message_id"))
    assert json.loads(fast.content)["customer_message_id"] == "a"
    # Both wrote the same thing: a queued message in one conversation with the contact.
    rows = list(Message.objects.order_by("created_at").values("content", "status", "conversation"))
    assert [(r["content"], r["status"]) for r in rows] == [("Hi", Status.QUEUED)] * 2
    assert rows[0]["conversation"] == rows[1]["conversation"]


def test_a_repeated_send_gives_the_same_message_through_both_doors(settings, key, sms_inbox):
    body = message_body(sms_inbox, customer_message_id="once")
    first = send(settings, key, body)
    again_fast = send(settings, key, body)
    again_full = send(settings, key, body, hot=False)
    assert first.status_code == 202 and again_fast.status_code == 200
    assert answered_by_hot_path(again_fast)
    same_answer(again_fast, again_full)
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "case, code",
    [
        ("outside-window", 422),
        ("template", 400),
        ("email-address", 400),
        ("not-json", 400),
        ("nan", 400),
        ("text-body", 415),
        ("unknown-inbox", 400),
        ("blank-content", 400),
    ],
)
def test_every_other_send_is_left_to_the_api_and_the_hot_path_writes_nothing(
    settings, key, sms_inbox, inbox, case, code
):
    body = message_body(sms_inbox)
    kwargs = {}
    if case == "outside-window":  # WhatsApp free text, no message from the contact in 24 h
        body["inbox"] = str(inbox.id)
    elif case == "template":
        body["template"] = {"name": "x", "language": "en"}
    elif case == "email-address":
        body["to"] = "someone@example.com"
    elif case == "not-json":
        kwargs["raw"] = b"{not json"
    elif case == "nan":
        kwargs["raw"] = (
            b'{"inbox": "%s", "to": "+15550002222", "content": NaN}' % str(sms_inbox.id).encode()
        )
    elif case == "text-body":
        kwargs["content_type"] = "text/plain"
    elif case == "unknown-inbox":
        body["inbox"] = "00000000-0000-4000-8000-000000000000"
    elif case == "blank-content":
        body["content"] = "   "
    fast = send(settings, key, body, **kwargs)
    assert not answered_by_hot_path(fast)
    assert fast.status_code == code
    assert Message.objects.count() == 0
    full = send(settings, key, body, hot=False, **kwargs)
    same_answer(fast, full)


def test_a_send_with_a_revoked_key_is_refused_by_the_api(settings, account, key, sms_inbox):
    ApiKey.objects.filter(account=account).update(revoked_at=timezone.now())
    body = message_body(sms_inbox)
    fast = send(settings, key, body)
    assert not answered_by_hot_path(fast) and fast.status_code == 401
    assert Message.objects.count() == 0
    same_answer(fast, send(settings, key, body, hot=False))


def test_a_session_is_never_answered_by_the_hot_path(settings, account, message, django_user_model):
    from inbox.models import Membership

    user = django_user_model.objects.create_user("agent", password="pw")
    Membership.objects.create(user=user, account=account)
    client = APIClient()
    client.force_login(user)
    response = client.get(f"/api/v1/messages/{message.id}")
    assert response.status_code == 200 and not answered_by_hot_path(response)
    assert "Cookie" in response["Vary"]  # the session middleware ran
