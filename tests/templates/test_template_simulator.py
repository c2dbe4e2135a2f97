"""The simulator's template APIs (``make run``): demo templates on Graph's paths, and a new
template approved by a signed status webhook a few seconds after it was created."""

import time

import pytest

from inbox.models import Template
from statuses.simulator import ProviderSimulator, Scenario
from statuses.simulator import providers as sim
from statuses.simulator import templates as sim_templates
from tests.fakes.recorder import RecordingServer
from tests.templates.conftest import WABA_ID

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """Stands in for Tickmark's webhook URL: records what the simulator plays."""
    with RecordingServer() as server:
        yield server


@pytest.fixture
def simulated(account, make_inbox, receiver, monkeypatch):
    monkeypatch.setattr(sim_templates, "REVIEW_DELAY", 0.2)
    inbox = make_inbox(account, "whatsapp_cloud", waba_id=WABA_ID)

    def lookup(inbox_id):
        if inbox_id != str(inbox.id):
            return None
        return sim.Inbox(str(inbox.id), inbox.channel_type, dict(inbox.config), receiver.url)

    with ProviderSimulator(scenario=Scenario.instant(), inboxes=lookup) as simulator:
        inbox.config["api_base_url"] = simulator.base_url("whatsapp_cloud", inbox.id)
        inbox.save(update_fields=["config"])
        yield inbox


def test_sync_reads_the_demo_templates(client, simulated):
    response = client.post(f"/api/v1/inboxes/{simulated.id}/templates/sync")

    assert response.status_code == 200, response.content
    assert response.json()["synced"] == len(sim_templates.DEMO_TEMPLATES)
    statuses = set(Template.objects.filter(inbox=simulated).values_list("status", flat=True))
    assert {"APPROVED", "PENDING", "REJECTED", "PAUSED"} <= statuses


def test_a_created_template_is_approved_by_a_signed_webhook(client, simulated, receiver):
    response = client.post(
        "/api/v1/templates",
        {
            "inbox": str(simulated.id),
            "name": "shipping_delay",
            "language": "en_US",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Sorry {{1}}, your parcel is late."}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "PENDING"

    deadline = time.monotonic() + 10
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    (played,) = receiver.requests

    # Replayed to Tickmark's real webhook door, with the simulator's own signature.
    answer = client.post(
        simulated.webhook_path,
        played.body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=played.headers["x-hub-signature-256"],
    )
    assert answer.status_code == 200
    template = Template.objects.get(inbox=simulated, name="shipping_delay")
    assert (template.status, template.body_params) == ("APPROVED", 1)
