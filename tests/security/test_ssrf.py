"""SSRF (issue #10 item 1): tenant-given URLs and hosts never reach internal addresses.

Refused when saved (API and admin), refused again on the resolved address when connecting (DNS
rebinding), no redirects, and no remote body or port-scan oracle in what the caller reads back.
The suite runs with TICKMARK_ALLOW_PRIVATE_URLS on (fakes listen on 127.0.0.1); these tests turn
it off.
"""

import ipaddress
import json
import socket

import pytest
from django.utils import timezone

from statuses import netguard, outbound, sending, webhooks_out
from statuses.admin import WebhookSubscriptionForm
from statuses.models import OutgoingAttempt, OutgoingEvent, SendTry, WebhookSubscription
from statuses.providers import email as email_provider
from tests.api.conftest import make_key
from tests.fakes.recorder import RecordingServer, Reply
from tests.providers.chat_support import outgoing, refused_port

pytestmark = pytest.mark.django_db

# The address forms the security review used, plus a few more ways to write "inside".
PRIVATE_URLS = [
    "http://127.0.0.1:8000/hook",
    "http://localhost:5432/",
    "http://[::1]:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]:6379/",
    "http://10.1.2.3/",
    "http://192.168.0.10/",
    "http://172.16.5.4/",
    "http://100.64.0.1/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://db.localhost/",
    "http://2130706433/",
]
PUBLIC_URL = "https://93.184.215.14/hook"


@pytest.fixture
def guard_on(settings):
    settings.TICKMARK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def client(account):
    from rest_framework.test import APIClient

    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(account)}")
    return c


@pytest.fixture
def rebind(monkeypatch):
    """Make names resolve to chosen addresses, as an attacker's DNS would."""
    table: dict[str, list[str]] = {}
    real = netguard.resolve

    def resolve(host, port):
        return table[host] if host in table else real(host, port)

    monkeypatch.setattr(netguard, "resolve", resolve)
    return table


# --- the address rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.251",
        "240.0.0.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "2001::1",
        "fc00::1",
        "fd00::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
    ],
)
def test_internal_addresses_are_not_public(address):
    assert not netguard.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_public(address):
    assert netguard.is_public(ipaddress.ip_address(address))


# --- when saving --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_webhook_subscription_to_an_internal_address_is_refused(guard_on, client, url):
    response = client.post("/api/v1/webhooks", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "url" in json.dumps(response.json())
    assert not WebhookSubscription.objects.exists()


def test_webhook_subscription_to_a_public_address_is_accepted(guard_on, client):
    response = client.post("/api/v1/webhooks", {"url": PUBLIC_URL}, format="json")
    assert response.status_code == 201, response.content


def test_a_name_resolving_inside_is_refused_when_saving(guard_on, client, rebind):
    rebind["hooks.attacker.example"] = ["93.184.215.14", "10.0.0.7"]
    response = client.post(
        "/api/v1/webhooks", {"url": "https://hooks.attacker.example/x"}, format="json"
    )
    assert response.status_code == 400
    assert "private" in json.dumps(response.json())


def test_the_guard_can_be_switched_off_for_local_fakes(client):
    response = client.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/x"}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://[::1]:6379", "http://0.0.0.0"])
def test_api_base_url_and_webhook_url_are_refused(guard_on, client, url):
    created = client.post(
        "/api/v1/inboxes",
        {
            "name": "WA",
            "channel_type": "whatsapp_cloud",
            "config": {
                "phone_number_id": "1",
                "access_token": "t",
                "app_secret": "s",
                "verify_token": "v",
                "api_base_url": url,
            },
        },
        format="json",
    )
    assert created.status_code == 400, created.content
    assert "api_base_url" in json.dumps(created.json())

    api = client.post(
        "/api/v1/inboxes",
        {"name": "API", "channel_type": "api", "config": {"webhook_url": url, "hmac_secret": "x"}},
        format="json",
    )
    assert api.status_code == 400, api.content
    assert "webhook_url" in json.dumps(api.json())


def test_updating_an_inbox_to_an_internal_url_is_refused_and_changes_nothing(
    guard_on, client, account, make_inbox
):
    inbox = make_inbox(account, "api", webhook_url=PUBLIC_URL, hmac_secret="x")
    response = client.patch(
        f"/api/v1/inboxes/{inbox.id}",
        {"config": {"webhook_url": "http://169.254.169.254/latest/"}},
        format="json",
    )
    assert response.status_code == 400
    inbox.refresh_from_db()
    assert inbox.config["webhook_url"] == PUBLIC_URL


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "10.0.0.2", "0.0.0.0"])
def test_smtp_host_internal_is_refused(guard_on, client, host):
    response = client.post(
        "/api/v1/inboxes",
        {
            "name": "Mail",
            "channel_type": "email",
            "config": {
                "smtp_host": host,
                "smtp_port": 6379,
                "from_address": "a@acme.example",
                "webhook_token": "t",
            },
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "smtp_host" in json.dumps(response.json())


def test_smtp_host_with_a_port_is_refused(client):
    response = client.post(
        "/api/v1/inboxes",
        {
            "name": "Mail",
            "channel_type": "email",
            "config": {
                "smtp_host": "127.0.0.1:6379",
                "smtp_port": 25,
                "from_address": "a@acme.example",
                "webhook_token": "t",
            },
        },
        format="json",
    )
    assert response.status_code == 400
    assert "smtp_port" in json.dumps(response.json())


def test_admin_form_refuses_an_internal_webhook_url(guard_on, account):
    form = WebhookSubscriptionForm(
        data={"account": account.pk, "url": "http://[::ffff:127.0.0.1]/", "events": "[]"}
    )
    assert not form.is_valid()
    assert "url" in form.errors


# --- when connecting (DNS rebinding) ------------------------------------------------------------


@pytest.fixture
def receiver():
    with RecordingServer() as server:
        yield server


def _port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_webhook_delivery_to_a_name_now_resolving_to_loopback_never_connects(
    guard_on, account, make_inbox, receiver, rebind
):
    rebind["hooks.rebind.example"] = ["127.0.0.1"]  # public when saved, loopback when used
    subscription = WebhookSubscription.objects.create(
        account=account,
        url=f"http://hooks.rebind.example:{_port(receiver)}/hook",
        events=["message.created"],
    )
    inbox = make_inbox(account, "api", webhook_url=PUBLIC_URL, hmac_secret="x")
    outbound.message_create_outgoing(account=account, inbox=inbox, to="c-1", content="Hi")

    assert webhooks_out.deliver_due() == 0
    assert receiver.requests == []
    attempt = OutgoingAttempt.objects.get(event__subscription=subscription)
    assert (attempt.http_status, attempt.error, attempt.response_body) == (
        None,
        "connection failed",
        "",
    )


def test_a_blocked_address_reads_like_a_closed_port(guard_on, settings, account, make_inbox):
    """No port-scan oracle: a refused address and a refused connection look the same."""
    inbox = make_inbox(account, "api", webhook_url=PUBLIC_URL, hmac_secret="x")
    blocked = WebhookSubscription.objects.create(
        account=account, url="http://127.0.0.1:6379/", events=["message.created"]
    )
    outbound.message_create_outgoing(account=account, inbox=inbox, to="c-1", content="Hi")
    webhooks_out.deliver_due()

    WebhookSubscription.objects.filter(id=blocked.id).update(is_active=False)
    settings.TICKMARK_ALLOW_PRIVATE_URLS = True
    closed = WebhookSubscription.objects.create(
        account=account, url=f"http://127.0.0.1:{refused_port()}/", events=["message.created"]
    )
    outbound.message_create_outgoing(account=account, inbox=inbox, to="c-2", content="Hi")
    webhooks_out.deliver_due()

    errors = {
        sub.id: set(OutgoingAttempt.objects.filter(event__subscription=sub).values_list("error"))
        for sub in (blocked, closed)
    }
    assert errors[blocked.id] == errors[closed.id] == {("connection failed",)}


def test_worker_send_to_a_name_resolving_to_loopback_never_connects(
    guard_on, account, make_inbox, receiver, rebind
):
    rebind["api.rebind.example"] = ["127.0.0.1"]
    inbox = make_inbox(
        account,
        "api",
        webhook_url=f"http://api.rebind.example:{_port(receiver)}/send",
        hmac_secret="x",
    )
    message, _ = outbound.message_create_outgoing(
        account=account, inbox=inbox, to="c-1", content="Hi"
    )
    sending.message_send(message_id=message.id, attempt=message.attempt)

    assert receiver.requests == []
    send_try = SendTry.objects.get(message=message)
    assert send_try.error_code == "connection_failed"
    assert "connection failed" in send_try.error_detail
    assert "Errno" not in send_try.error_detail and "127.0.0.1" not in send_try.error_detail


def test_smtp_to_a_name_resolving_to_loopback_never_connects(guard_on, rebind):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        rebind["smtp.rebind.example"] = ["127.0.0.1"]
        result = email_provider.send(
            None,
            {
                "smtp_host": "smtp.rebind.example",
                "smtp_port": listener.getsockname()[1],
                "from_address": "support@acme.example",
                "webhook_token": "t",
            },
            outgoing(to="ada@example.org"),
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert (result.error_code, result.error_detail) == ("connection_failed", "connection failed")


def test_smtp_connects_when_the_guard_is_off(rebind):
    """The same send reaches the listener with the guard off: the test above can fail."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)
        rebind["smtp.rebind.example"] = ["127.0.0.1"]
        config = {
            "smtp_host": "127.0.0.1",
            "smtp_port": listener.getsockname()[1],
            "from_address": "support@acme.example",
            "webhook_token": "t",
            "smtp_timeout": 0.5,
        }
        email_provider.send(None, config, outgoing(to="ada@example.org"))
        connection, _ = listener.accept()
        connection.close()


# --- what the caller reads back -----------------------------------------------------------------


def test_no_redirect_is_followed_and_no_body_is_kept(account, make_inbox, receiver, client):
    receiver.queue(
        Reply(302, "internal secret page", headers={"Location": "http://169.254.169.254/"})
    )
    receiver.queue(Reply(500, "INTERNAL-SECRET-TOKEN redis_version:7.2"))
    subscription = WebhookSubscription.objects.create(
        account=account, url=receiver.url + "/h", events=["message.created"]
    )
    inbox = make_inbox(account, "api", webhook_url=PUBLIC_URL, hmac_secret="x")
    outbound.message_create_outgoing(account=account, inbox=inbox, to="c-1", content="Hi")

    webhooks_out.deliver_due()
    OutgoingEvent.objects.update(next_attempt_at=timezone.now())  # the retry, now
    webhooks_out.deliver_due()

    assert len(receiver.requests) == 2  # the redirect was not followed
    body = client.get(f"/api/v1/webhooks/{subscription.id}/deliveries").json()
    statuses = sorted((r["http_status"], r["error"], r["response_body"]) for r in body["results"])
    assert statuses == [(302, "HTTP 302", ""), (500, "HTTP 500", "")]
    assert "SECRET" not in json.dumps(body)


def test_a_provider_error_body_is_not_echoed_in_the_message_error(
    account, make_inbox, receiver, client
):
    receiver.queue(Reply(400, "INTERNAL-SECRET-TOKEN <html>not json</html>"))
    inbox = make_inbox(account, "api", webhook_url=receiver.url + "/send", hmac_secret="x")
    message, _ = outbound.message_create_outgoing(
        account=account, inbox=inbox, to="c-1", content="Hi"
    )
    sending.message_send(message_id=message.id, attempt=message.attempt)
    shown = client.get(f"/api/v1/messages/{message.id}").json()
    assert shown["status"] == "FAILED"
    assert "SECRET" not in json.dumps(shown)
    assert "HTTP 400" in json.dumps(shown["error"])
