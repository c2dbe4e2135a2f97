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


def test_message_admin_is_read_only_with_text_contact_and_content_search(admin_client, demo):
    changelist = reverse("admin:inbox_message_changelist")
    html = admin_client.get(changelist).content.decode()
    assert "Add message" not in html and reverse("admin:inbox_message_add") not in html
    assert admin_client.get(reverse("admin:inbox_message_add")).status_code == 403
    assert "column-text" in html and "column-contact" in html
    outgoing = Message.objects.filter(direction="outgoing").exclude(content="").first()
    word = outgoing.content.split()[0]
    found = admin_client.get(changelist, {"q": word}).content.decode()
    assert str(outgoing.id)[:8] in found  # search by content; the short id does not wrap
    # The change page shows values, no inputs; POSTing a change is refused.
    change = reverse("admin:inbox_message_change", args=[outgoing.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="content"' not in page and "Delivered at" in page
    assert admin_client.post(change, {"content": "rewritten"}).status_code == 403
    outgoing.refresh_from_db()
    assert outgoing.content != "rewritten"
    incoming = Message.objects.filter(direction="incoming").first()
    page = admin_client.get(reverse("admin:inbox_message_change", args=[incoming.pk]))
    assert "Queued at" not in page.content.decode() and "Sent at" not in page.content.decode()


def test_status_event_links_to_its_message(admin_client, demo):
    event = StatusEvent.objects.exclude(message=None).first()
    html = admin_client.get(reverse("admin:statuses_statusevent_changelist")).content.decode()
    assert reverse("admin:inbox_message_change", args=[event.message_id]) in html


def test_add_inbox_asks_for_the_channels_credentials_and_masks_secrets(admin_client, demo):
    add = reverse("admin:inbox_inbox_add")
    html = admin_client.get(add).content.decode()
    assert "webhooks//" not in html
    assert "Pick the channel type and save" in html
    # Choosing Telegram: the form now asks for the bot token (a password field).
    response = admin_client.post(
        add, {"account": demo.id, "name": "Support bot", "channel_type": "telegram"}
    )
    html = response.content.decode()
    assert response.status_code == 200 and 'name="config__bot_token"' in html
    assert "Now fill in the Telegram credentials below." in html
    assert "This field is required." not in html
    assert 'type="password" name="config__bot_token"' in html
    assert not Inbox.objects.filter(name="Support bot").exists()
    response = admin_client.post(
        add,
        {
            "account": demo.id,
            "name": "Support bot",
            "channel_type": "telegram",
            "config__bot_token": "123:SECRET-BOT-TOKEN",
            "config__secret_token": "hook-secret-value",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    inbox = Inbox.objects.get(name="Support bot")
    assert inbox.config["bot_token"] == "123:SECRET-BOT-TOKEN"
    change = reverse("admin:inbox_inbox_change", args=[inbox.pk])
    html = admin_client.get(change).content.decode()
    assert "SECRET-BOT-TOKEN" not in html and "hook-secret-value" not in html
    assert f"/webhooks/telegram/{inbox.id}/" in html
    # Saving without retyping the secrets keeps them.
    response = admin_client.post(
        change, {"account": demo.id, "name": "Support bot 2", "channel_type": "telegram"}
    )
    assert response.status_code == 302
    inbox.refresh_from_db()
    assert (inbox.name, inbox.config["bot_token"]) == ("Support bot 2", "123:SECRET-BOT-TOKEN")
