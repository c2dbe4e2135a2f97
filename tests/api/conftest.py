import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from inbox.models import ApiKey


def make_key(account) -> str:
    raw = ApiKey.generate()
    key = ApiKey(account=account, name="test")
    key.set_key(raw)
    key.save()
    return raw


@pytest.fixture
def api_key(account):
    return make_key(account)


@pytest.fixture
def client(api_key):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return c


@pytest.fixture
def other_client(other_account):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(other_account)}")
    return c


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def api_inbox(account, make_inbox):
    return make_inbox(
        account, "api", webhook_url="http://127.0.0.1:9/hook", hmac_secret="integrator-secret"
    )


@pytest.fixture
def sms_inbox(account, make_inbox):
    return make_inbox(
        account,
        "twilio_sms",
        account_sid="AC123",
        auth_token="twilio-token",
        from_number="+15550001111",
    )


@pytest.fixture
def open_window():
    """Mark a WhatsApp conversation as recently written to by the contact."""
    from inbox import services

    def open_(inbox, address="+16505076520"):
        contact = services.contact_get_or_create(inbox=inbox, address=address)
        conversation = services.conversation_get_or_create(inbox=inbox, contact=contact)
        conversation.last_inbound_at = timezone.now()
        conversation.save(update_fields=["last_inbound_at"])
        return conversation

    return open_
