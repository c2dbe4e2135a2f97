import os

import pytest
from django.conf import settings


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return f"database: {db['ENGINE']} {db.get('NAME')}; redis: {os.environ.get('REDIS_URL', '-')}"


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
