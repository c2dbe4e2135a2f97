import os

import pytest
from django.conf import settings

# Provider fakes, the simulator and webhook receivers listen on 127.0.0.1: the SSRF guard is off
# for the suite (and for the servers and workers it starts); tests/security turns it back on.
os.environ["TICKMARK_ALLOW_PRIVATE_URLS"] = "1"
settings.TICKMARK_ALLOW_PRIVATE_URLS = True


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
