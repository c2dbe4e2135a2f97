"""The admin's template pages and "sync now", and the worker's periodic template sync."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from inbox.models import Template, TemplateSync
from statuses import sweeps
from statuses.templates import templates_sync_due
from tests.fakes.recorder import Reply

pytestmark = pytest.mark.django_db

LISTING = {
    "data": [
        {
            "id": "111",
            "name": "welcome",
            "language": "en_US",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}"}],
        }
    ]
}


@pytest.fixture
def admin(django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_changelist_filters_by_status_category_and_quality(admin, wa_inbox, make_template):
    make_template(wa_inbox, "order_update")
    make_template(wa_inbox, "spring_sale", category="MARKETING", status="PAUSED")

    page = admin.get("/admin/inbox/template/", {"status__exact": "PAUSED"})

    assert page.status_code == 200
    assert b"spring_sale" in page.content
    assert b"order_update" not in page.content
    for query in ({"category__exact": "MARKETING"}, {"quality_score__exact": "UNKNOWN"}):
        assert admin.get("/admin/inbox/template/", query).status_code == 200
    template = Template.objects.get(name="order_update")
    assert admin.get(f"/admin/inbox/template/{template.id}/change/").status_code == 200


def test_sync_now_from_templates_and_from_inboxes(admin, wa_inbox, graph, make_template):
    template = make_template(wa_inbox, "old_one")
    graph.queue(Reply(200, LISTING), Reply(200, LISTING))

    response = admin.post(
        "/admin/inbox/template/",
        {"action": "sync_now", "_selected_action": [template.id]},
        follow=True,
    )

    assert response.status_code == 200
    assert b"1 templates synced (1 new, 0 changed, 1 gone)" in response.content
    assert Template.objects.get(name="welcome").status == "APPROVED"
    template.refresh_from_db()
    assert template.status == "DELETED"

    response = admin.post(
        "/admin/inbox/inbox/",
        {"action": "sync_templates_now", "_selected_action": [str(wa_inbox.id)]},
        follow=True,
    )
    assert b"1 templates synced (0 new, 0 changed, 0 gone)" in response.content
    assert len(graph.requests) == 2


def test_the_sweep_syncs_due_inboxes_once_per_interval(wa_inbox, graph, settings):
    settings.TICKMARK_TEMPLATE_SYNC_INTERVAL = 6 * 3600
    graph.queue(Reply(200, LISTING))

    assert templates_sync_due() == 1
    assert Template.objects.filter(inbox=wa_inbox, name="welcome").exists()
    assert templates_sync_due() == 0  # synced just now: not due
    assert len(graph.requests) == 1

    graph.queue(Reply(200, LISTING))
    later = timezone.now() + timedelta(hours=6, minutes=1)
    assert sweeps.run_all(now=later)["templates_sync_due"] == 1
    assert len(graph.requests) == 2


def test_a_failed_sweep_sync_is_recorded_and_retried_later(wa_inbox, graph, settings):
    graph.queue(Reply(500, {"error": {"message": "Service temporarily unavailable", "code": 2}}))

    assert templates_sync_due() == 0

    state = TemplateSync.objects.get(inbox=wa_inbox)
    assert "Service temporarily unavailable" in state.error
    assert state.synced_at is not None
    settings.TICKMARK_TEMPLATE_SYNC_INTERVAL = 0
    assert templates_sync_due() == 0
    assert len(graph.requests) == 1


def test_the_sweep_leaves_other_channels_alone(account, make_inbox, graph):
    make_inbox(account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+15550001111")

    assert templates_sync_due() == 0
    assert graph.requests == []
    assert not TemplateSync.objects.exists()


def test_waba_id_is_needed_to_sync(account, make_inbox, graph):
    inbox = make_inbox(account, "whatsapp_cloud", api_base_url=graph.url)

    assert templates_sync_due() == 0
    assert "waba_id" in TemplateSync.objects.get(inbox=inbox).error
    assert graph.requests == []
