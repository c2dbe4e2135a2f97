"""The campaigns pages over HTTP (DESIGN §16): list, detail, live panels and the buttons."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inbox.models import Campaign, Membership, Message
from statuses import campaign_counts, services
from statuses.campaigns import create, materialise
from statuses.campaigns.recipients import Recipient

pytestmark = pytest.mark.django_db


def _client_for(account, username="ada", csrf=False):
    user = get_user_model().objects.create_user(username=username, password="pw-123456")
    Membership.objects.create(user=user, account=account)
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _campaign(account, inbox, n=4, name="Spring sale", prefix="+1650777"):
    campaign, _ = create.campaign_create(
        account=account,
        inbox=inbox,
        name=name,
        template={"name": "spring_sale", "language": "en"},
        recipients=[Recipient(i, f"{prefix}{i:04d}") for i in range(n)],
    )
    materialise.campaign_materialise(campaign_id=campaign.id)
    campaign.refresh_from_db()
    return campaign


def _report(campaign, statuses):
    """Move the campaign's messages (in creation order) to ``statuses``, through the service."""
    messages = list(Message.objects.filter(campaign=campaign).order_by("to_address"))
    for message, (status, code) in zip(messages, statuses, strict=False):
        services.message_status_report(
            message=message, status=status, source="api", error_code=code
        )


def test_empty_list_says_how_to_create_one(account, inbox):
    page = _client_for(account).get("/campaigns/").content.decode()
    assert "No campaign yet" in page
    assert "POST /api/v1/campaigns" in page
    assert "from a CSV file" in page


def test_inbox_and_analytics_link_to_campaigns(account, inbox):
    client = _client_for(account)
    assert 'href="/campaigns/"' in client.get("/").content.decode()
    assert 'href="/campaigns/"' in client.get("/analytics/").content.decode()


def test_list_shows_each_campaign_with_its_counts(account, inbox):
    campaign = _campaign(account, inbox)
    _report(campaign, [("sent", ""), ("delivered", ""), ("read", ""), ("failed", "131026")])
    page = _client_for(account).get("/campaigns/").content.decode()
    assert f'href="/campaigns/{campaign.id}/"' in page
    assert "Spring sale" in page and inbox.name in page and ">Running<" in page
    row = page.split(f'data-campaign="{campaign.id}"')[1].split("</tr>")[0]
    counts = {
        step: row.split(f'data-count="{step}">')[1].split("<")[0]
        for step in ("sent", "delivered", "read", "failed")
    }
    assert counts == {"sent": "3", "delivered": "2", "read": "1", "failed": "1"}


def test_detail_shows_funnel_progress_and_failure_reasons(account, inbox):
    campaign = _campaign(account, inbox, n=5)
    _report(campaign, [("read", ""), ("failed", "131026"), ("failed", "131026"), ("sent", "")])
    page = _client_for(account).get(f"/campaigns/{campaign.id}/").content.decode()
    assert "<h1>Spring sale</h1>" in page
    for step, count in {"queued": 1, "sent": 2, "delivered": 1, "read": 1, "failed": 2}.items():
        assert f'data-count="{step}">{count}<' in page
    assert 'aria-label="Funnel: 1 waiting to send, 2 sent, 1 delivered, 1 read, 2 failed"' in page
    assert "5 of 5 (100.0 %)" in page  # all messages created
    assert "4 of 5 (80.0 %)" in page  # four handed to the provider
    # The catalogue's words for WhatsApp 131026, not the raw code alone.
    reason = page.split('data-error-code="131026"')[1].split("</li>")[0]
    assert "Message undeliverable" in reason and "data-error-count>2<" in reason
    assert 'data-action="pause"' in page and 'data-action="cancel"' in page
    assert 'data-action="resume"' not in page
    # Every message exists: the page's script follows the socket alone, no polling.
    assert '"creating": false' in page


def test_panel_reads_a_constant_number_of_queries(account, inbox):
    client = _client_for(account)
    queries = []
    for n in (2, 30):
        campaign = _campaign(account, inbox, n=n, prefix=f"+1650{n:03d}")
        _report(campaign, [("failed", "131026"), ("failed", "131047"), ("read", "")])
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"/campaigns/{campaign.id}/panel/")
        assert response.status_code == 200
        assert response["X-Campaign-Creating"] == "0"
        queries.append(len(ctx.captured_queries))
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/campaigns/panel/").status_code == 200
        queries.append(len(ctx.captured_queries))
    # session, user, membership, campaign, counts, reasons — whatever the campaign's size;
    # the list: session, user, membership, campaigns, counts, whatever their number.
    assert queries[0] == queries[2] <= 6
    assert queries[1] == queries[3] <= 5


def test_pause_resume_cancel_call_the_campaign_services(account, inbox):
    campaign = _campaign(account, inbox, n=3)
    client = _client_for(account)
    url = f"/campaigns/{campaign.id}/"
    response = client.post(url + "pause/", follow=True)
    assert response.redirect_chain == [(url, 302)]
    page = response.content.decode()
    assert "Paused “Spring sale”." in page and 'data-action="resume"' in page
    assert Campaign.objects.get(id=campaign.id).status == "paused"

    client.post(url + "resume/")
    assert Campaign.objects.get(id=campaign.id).status == "running"

    page = client.post(url + "cancel/", follow=True).content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"
    assert campaign_counts.counts([campaign.id])[campaign.id]["FAILED"] == 3
    assert "Campaign cancelled" in page  # the reason, in the catalogue's words
    assert "data-action=" not in page  # nothing left to do

    # A finished campaign cannot be paused: said, not crashed.
    page = client.post(url + "pause/", follow=True).content.decode()
    assert "A cancelled campaign cannot be paused." in page


def test_buttons_need_the_csrf_token_and_a_post(account, inbox):
    campaign = _campaign(account, inbox, n=2)
    client = _client_for(account, csrf=True)
    url = f"/campaigns/{campaign.id}/pause/"
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    assert Campaign.objects.get(id=campaign.id).status == "running"
    page = client.get(f"/campaigns/{campaign.id}/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert Campaign.objects.get(id=campaign.id).status == "paused"
    assert (
        client.post(
            f"/campaigns/{campaign.id}/explode/", {"csrfmiddlewaretoken": token}
        ).status_code
        == 404
    )


def test_another_accounts_campaign_is_not_found(account, other_account, inbox, make_inbox):
    theirs = _campaign(other_account, make_inbox(other_account), name="Their sale")
    client = _client_for(account)
    assert "Their sale" not in client.get("/campaigns/").content.decode()
    for url in ("", "panel/"):
        assert client.get(f"/campaigns/{theirs.id}/{url}").status_code == 404
    assert client.post(f"/campaigns/{theirs.id}/cancel/").status_code == 404
    assert Campaign.objects.get(id=theirs.id).status == "running"


def test_signed_out_visitors_are_sent_to_sign_in(account, inbox):
    campaign = _campaign(account, inbox, n=1)
    for url in ("/campaigns/", f"/campaigns/{campaign.id}/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Client().post(f"/campaigns/{campaign.id}/cancel/").status_code == 302
    assert Campaign.objects.get(id=campaign.id).status == "running"


def test_a_campaign_still_being_created_is_polled_until_it_is(account, inbox):
    campaign, _ = create.campaign_create(
        account=account,
        inbox=inbox,
        name="Big one",
        template={"name": "spring_sale", "language": "en"},
        recipients=[Recipient(i, f"+1650888{i:04d}") for i in range(3)],
    )
    client = _client_for(account)
    page = client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert '"creating": true' in page
    assert 'data-progress="created">0 of 3 (0.0 %)' in page
    materialise.campaign_materialise(campaign_id=campaign.id)
    response = client.get(f"/campaigns/{campaign.id}/panel/")
    assert response["X-Campaign-Creating"] == "0"
    assert 'data-progress="created">3 of 3 (100.0 %)' in response.content.decode()
    assert 'data-count="queued">3<' in response.content.decode()


def _csv(text, name="recipients.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def test_the_form_creates_a_campaign_from_a_csv_and_lists_the_rejected(account, inbox):
    client = _client_for(account)
    response = client.post(
        "/campaigns/new/",
        {
            "name": "Shipping notice",
            "inbox": str(inbox.id),
            "template_name": "order_shipped",
            "template_language": "en_US",
            "recipients": _csv(
                "to,1,2\n+16505550001,Ana,A-1\nnot-a-number,Bo,A-2\n"
                "+16505550003,Cy,A-3\n+16505550001,Ana,A-1\n"
            ),
        },
        follow=True,
    )
    campaign = Campaign.objects.get(account=account)
    assert response.redirect_chain == [(f"/campaigns/{campaign.id}/", 302)]
    page = response.content.decode()
    assert "Created “Shipping notice”: 2 recipient(s) accepted." in page
    assert (
        "2 rejected — line 3 (not-a-number): invalid_address; "
        "line 5 (+16505550001): duplicate_recipient." in page
    )
    assert (campaign.total, campaign.rejected, campaign.status) == (2, 2, "running")
    assert campaign.template == {"name": "order_shipped", "language": {"code": "en_US"}}
    materialise.campaign_materialise(campaign_id=campaign.id)
    templates = Message.objects.filter(campaign=campaign).order_by("to_address")
    assert [m.template["components"][0]["parameters"][1]["text"] for m in templates] == [
        "A-1",
        "A-3",
    ]


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"recipients": None}, "CSV file: This field is required."),
        ({"recipients": "name\nAna\n"}, "CSV file: The CSV needs a `to` column."),
        ({"name": ""}, "Name: This field may not be blank."),
        ({"inbox": "theirs"}, "Inbox: No such inbox."),
        ({"content": "", "template_name": ""}, "Message: Give either content or template."),
    ],
)
def test_the_form_says_what_is_wrong_and_creates_nothing(
    account, other_account, inbox, make_inbox, fields, error
):
    theirs = make_inbox(other_account)
    data = {
        "name": "Shipping notice",
        "inbox": str(inbox.id),
        "content": "Your order has shipped.",
        "recipients": "to\n+16505550001\n",
        **fields,
    }
    if data["inbox"] == "theirs":
        data["inbox"] = str(theirs.id)
    if data["recipients"] is None:
        del data["recipients"]
    else:
        data["recipients"] = _csv(data["recipients"])
    response = _client_for(account).post("/campaigns/new/", data)
    assert response.status_code == 400
    page = response.content.decode()
    assert error in page
    if "name" not in fields:  # what was typed stays in the form
        assert 'value="Shipping notice"' in page
    assert not Campaign.objects.exists()


def test_the_form_refuses_a_csv_file_too_large_to_be_a_campaign(account, inbox):
    from inbox.views.campaigns import MAX_CSV_BYTES

    row = "+16505550001," + "x" * 99 + "\n"
    text = "to,note\n" + row * (MAX_CSV_BYTES // len(row) + 1)
    response = _client_for(account).post(
        "/campaigns/new/",
        {"name": "Huge", "inbox": str(inbox.id), "content": "Hi", "recipients": _csv(text)},
    )
    assert response.status_code == 400
    assert "CSV file: at most 20 MB." in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_form_needs_the_csrf_token(account, inbox):
    client = _client_for(account, csrf=True)
    response = client.post(
        "/campaigns/new/",
        {"name": "x", "inbox": str(inbox.id), "content": "Hi", "recipients": _csv("to\n+1650\n")},
    )
    assert response.status_code == 403
    assert not Campaign.objects.exists()
