"""The Django admin pages and the bootstrap management commands."""

import io

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from inbox.models import Account, ApiKey, Inbox, Membership, Message, hash_api_key
from statuses.machine import Status
from statuses.models import StatusEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO())
    return Account.objects.get(name="Demo")


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_seed_demo_has_every_status_with_history(demo):
    statuses = set(Message.objects.filter(direction="outgoing").values_list("status", flat=True))
    assert {Status.QUEUED, Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED} <= statuses
    assert Inbox.objects.filter(account=demo).values("channel_type").distinct().count() >= 4
    read = Message.objects.filter(status=Status.READ).first()
    assert StatusEvent.objects.filter(message=read).count() >= 2
    call_command("seed_demo", stdout=io.StringIO())  # idempotent
    assert Inbox.objects.filter(account=demo).count() == 5


def test_every_admin_changelist_and_change_page_loads(admin_client, demo):
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        assert admin_client.get(url, {"q": "wamid"}).status_code == 200, url
        obj = model_admin.get_queryset(_request(admin_client)).first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client.get(change).status_code == 200, change


def _request(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="root")
    return request


def test_inbox_admin_masks_secrets(admin_client, demo):
    inbox = Inbox.objects.get(channel_type="whatsapp_cloud")
    page = admin_client.get(reverse("admin:inbox_inbox_change", args=[inbox.pk])).content.decode()
    assert inbox.config["access_token"] not in page
    assert inbox.config["app_secret"] not in page
    assert inbox.config["phone_number_id"] in page


def test_message_admin_filters_and_history(admin_client, demo):
    message = Message.objects.filter(status=Status.READ).first()
    url = reverse("admin:inbox_message_changelist")
    assert admin_client.get(url, {"status__exact": "read"}).status_code == 200
    assert admin_client.get(url, {"channel_type__exact": "whatsapp_cloud"}).status_code == 200
    page = admin_client.get(reverse("admin:inbox_message_change", args=[message.pk]))
    assert b"delivered" in page.content or b"read" in page.content


def test_api_key_created_in_admin_is_shown_once_and_stored_hashed(admin_client, demo):
    response = admin_client.post(
        reverse("admin:inbox_apikey_add"), {"account": demo.pk, "name": "ci"}, follow=True
    )
    shown = [str(m) for m in response.context["messages"]]
    key = shown[0].rsplit(" ", 1)[-1]
    stored = ApiKey.objects.get(name="ci")
    assert stored.key_hash == hash_api_key(key) and key not in stored.key_hash
    listing = admin_client.get(reverse("admin:inbox_apikey_changelist")).content.decode()
    assert key not in listing


def test_create_api_key_prints_the_key_last_and_stores_only_its_hash(db):
    out = io.StringIO()
    call_command("create_api_key", account="Initech", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip().splitlines()[-1]
    api_key = ApiKey.objects.get(account__name="Initech")
    assert api_key.key_hash == hash_api_key(key)
    assert api_key.prefix == key[: ApiKey.PREFIX_LENGTH]


def test_create_agent_joins_one_account(db):
    call_command(
        "create_agent",
        account="Initech",
        username="ana",
        password="s3cret-pass",
        stdout=io.StringIO(),
    )
    user = get_user_model().objects.get(username="ana")
    assert user.check_password("s3cret-pass")
    assert Membership.objects.get(user=user).account.name == "Initech"
    with pytest.raises(Exception, match="already belongs"):
        call_command(
            "create_agent", account="Other", username="ana", password="x", stdout=io.StringIO()
        )
