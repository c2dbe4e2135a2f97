import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fakes.recorder import RecordingServer


@pytest.fixture
def provider():
    """A local HTTP server standing in for the provider's send API."""
    with RecordingServer() as server:
        yield server


@pytest.fixture
def open_window():
    """Mark a conversation as having an inbound message a minute ago (24 h window open)."""
    from inbox import services as inbox_services

    def open_(inbox, address):
        contact = inbox_services.contact_get_or_create(inbox=inbox, address=address)
        conversation = inbox_services.conversation_get_or_create(inbox=inbox, contact=contact)
        conversation.last_inbound_at = timezone.now() - timedelta(minutes=1)
        conversation.save(update_fields=["last_inbound_at"])
        return conversation

    return open_


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
