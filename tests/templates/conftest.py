"""Fixtures for the template tests: a WhatsApp Cloud inbox whose Graph API is a local fake."""

import hashlib
import hmac
import json

import pytest
from rest_framework.test import APIClient

from inbox.models import Template
from tests.api.conftest import make_key
from tests.fakes.recorder import RecordingServer

WABA_ID = "102290129340398"


@pytest.fixture
def graph():
    """A local HTTP server standing in for the Graph API (answers scripted per test)."""
    with RecordingServer() as server:
        yield server


@pytest.fixture
def wa_inbox(account, make_inbox, graph):
    return make_inbox(account, "whatsapp_cloud", waba_id=WABA_ID, api_base_url=graph.url)


@pytest.fixture
def client(account):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(account)}")
    return c


@pytest.fixture
def other_client(other_account):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(other_account)}")
    return c


@pytest.fixture
def make_template(db):
    def make(inbox, name="order_update", language="en_US", **fields):
        values = {
            "category": "UTILITY",
            "status": "APPROVED",
            "provider_template_id": f"{abs(hash(name)) % 10**9}",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
            ],
            "header_params": 1,
            "body_params": 2,
            **fields,
        }
        return Template.objects.create(
            account_id=inbox.account_id, inbox=inbox, name=name, language=language, **values
        )

    return make


def signed_post(client, inbox, payload: dict):
    """POST ``payload`` to the inbox's webhook URL, signed with its app secret as Meta does."""
    raw = json.dumps(payload).encode()
    digest = hmac.new(inbox.config["app_secret"].encode(), raw, hashlib.sha256).hexdigest()
    return client.post(
        inbox.webhook_path,
        raw,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=f"sha256={digest}",
    )


@pytest.fixture
def closed_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
