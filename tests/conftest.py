import os

import pytest
from django.conf import settings

# ``pytester`` tests the skip guard itself (tests/test_forbid_skips.py).
pytest_plugins = ["pytester", "tests.forbid_skips"]


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return f"database: {db['ENGINE']} {db.get('NAME')}; redis: {os.environ.get('REDIS_URL', '-')}"


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
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
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
