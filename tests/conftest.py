import os

import pytest
from django.conf import settings

POSTGRES_ENGINES = ("django.db.backends.postgresql", settings.POSTGRES_ENGINE)

# Provider fakes, the simulator and webhook receivers listen on 127.0.0.1: the SSRF guard is off
# for the suite (and for the servers and workers it starts); tests/security turns it back on.
os.environ["TICKMARK_ALLOW_PRIVATE_URLS"] = "1"
settings.TICKMARK_ALLOW_PRIVATE_URLS = True

# ``pytester`` tests the skip guard itself (tests/test_forbid_skips.py).
pytest_plugins = ["pytester", "tests.forbid_skips"]


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return f"database: {db['ENGINE']} {db.get('NAME')}; redis: {os.environ.get('REDIS_URL', '-')}"


def clear_cache():
    """Empty Tickmark's cache (rate-limit counters) without touching the channel layer's keys."""
    from django.core.cache import cache

    from inbox import ratelimit

    ratelimit._cache_down_until = 0.0  # a test that cut the cache off leaves no pause behind
    config = settings.CACHES["default"]
    if config["BACKEND"].endswith("RedisCache"):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{config['KEY_PREFIX']}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


def wait_for_fresh_window(window: int, margin: float = 10.0) -> None:
    """Rate limits count in clock-aligned windows: start a test well clear of a window's end,
    so a boundary falling mid-test cannot reset the counts it asserts."""
    import time

    left = window - time.time() % window
    if left < margin:
        time.sleep(left + 0.05)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate limits count per client address, and every test client is 127.0.0.1.
    clear_cache()
    yield
    clear_cache()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "requires_postgres(reason): needs PostgreSQL; skipped with the reason on SQLite "
        "(a skip fails the run in CI, see tests/forbid_skips.py)",
    )


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.requires_postgres("why")``: the one way a test says it needs PostgreSQL.

    ``make test`` with no environment runs on SQLite; such tests are skipped with their reason
    there, and run (never skipped) in CI on PostgreSQL.
    """
    if settings.DATABASES["default"]["ENGINE"] in POSTGRES_ENGINES:
        return
    for item in items:
        marker = item.get_closest_marker("requires_postgres")
        if marker is None:
            continue
        why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
        reason = f"needs PostgreSQL: {why}" if why else "needs PostgreSQL"
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def account(db):
    from inbox.models import Account

    return Account.objects.create(name="Acme")


@pytest.fixture
def other_account(db):
    from inbox.models import Account

    return Account.objects.create(name="Globex")


@pytest.fixture
def make_inbox(db):
    from inbox.models import Inbox

    def make(account, channel_type="whatsapp_cloud", **config):
        defaults = {
            "whatsapp_cloud": {
                "phone_number_id": "106540352242922",
                "access_token": "test-access-token",
                "app_secret": "test_app_secret",
                "verify_token": "test-verify-token",
            },
        }.get(channel_type, {})
        return Inbox.objects.create(
            account=account,
            name=f"{channel_type} inbox",
            channel_type=channel_type,
            config={**defaults, **config},
        )

    return make


@pytest.fixture
def inbox(account, make_inbox):
    return make_inbox(account)


@pytest.fixture
def make_message(db):
    from django.utils import timezone

    from inbox import services as inbox_services
    from inbox.models import Message

    def make(inbox, to="+16505076520", content="Hello", provider_message_id=None, **fields):
        contact = inbox_services.contact_get_or_create(inbox=inbox, address=to)
        conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
        now = timezone.now()
        return Message.objects.create(
            account_id=inbox.account_id,
            inbox=inbox,
            conversation=conversation,
            channel_type=inbox.channel_type,
            direction=Message.Direction.OUTGOING,
            to_address=to,
            content=content,
            provider_message_id=provider_message_id,
            created_at=fields.pop("created_at", now),
            **fields,
        )

    return make


@pytest.fixture(autouse=True)
def _webhooks_applied_in_the_test_thread(request, settings):
    """Apply webhooks in one lane (Django's thread-sensitive thread) unless the test commits.

    A test's transaction is visible only to the connection that opened it; with several lanes a
    webhook posted through the test client would be applied on another thread's connection.
    Tests that commit (``transaction=True``) and the end-to-end tests run the production lanes.
    """
    marker = request.node.get_closest_marker("django_db")
    commits = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if not commits:
        settings.TICKMARK_WEBHOOK_LANES = 1
