"""Sending a template (DESIGN §13): refused before anything is queued when the template is not
approved or the parameters do not fit; the ``parameters`` shorthand becomes exactly the Cloud
API body Meta documents; a template never synced passes through; the message keeps its link."""

import pytest
from django_tasks_db.models import DBTaskResult

from inbox.models import Message
from statuses import correlation, sending
from tests.fakes.recorder import Reply

pytestmark = pytest.mark.django_db

TO = "+16505076520"


def send_template(client, inbox, template):
    return client.post(
        "/api/v1/messages", {"inbox": str(inbox.id), "to": TO, "template": template}, format="json"
    )


def nothing_queued():
    return (
        not Message.objects.exists()
        and not DBTaskResult.objects.filter(task_path="statuses.tasks.send_message").exists()
    )


@pytest.mark.parametrize("status", ["PENDING", "REJECTED", "PAUSED", "DISABLED", "DELETED"])
def test_a_template_not_approved_is_refused_and_nothing_is_sent(
    client, wa_inbox, graph, make_template, status
):
    make_template(wa_inbox, status=status, rejected_reason="Low quality")

    response = send_template(
        client,
        wa_inbox,
        {
            "name": "order_update",
            "language": "en_US",
            "parameters": {"header": ["A1"], "body": ["Ana", "A1"]},
        },
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "template_not_approved"
    assert status in error["message"]
    assert nothing_queued()
    assert graph.requests == []


@pytest.mark.parametrize(
    "template",
    [
        {"parameters": {"body": ["Ana", "A1"]}},  # the header's placeholder left out
        {"parameters": {"header": ["A1"], "body": ["Ana"]}},
        {"parameters": {"header": ["A1"], "body": ["Ana", "A1", "extra"]}},
        {},  # no parameters at all
        {"components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]},
        {"parameters": {"header": ["A1"], "body": ["Ana", ""]}},  # an empty value
        {"parameters": {"header": ["A1"], "body": ["Ana", {"x": 1}]}},  # not text
        {"parameters": {"footer": ["x"]}},
        {"parameters": ["Ana"]},
    ],
)
def test_parameters_that_do_not_fit_are_refused_and_nothing_is_sent(
    client, wa_inbox, graph, make_template, template
):
    make_template(wa_inbox)

    response = send_template(
        client, wa_inbox, {"name": "order_update", "language": "en_US", **template}
    )

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "template_parameters_mismatch"
    assert nothing_queued()
    assert graph.requests == []


def test_an_approved_template_is_sent_exactly_as_meta_documents(
    client, wa_inbox, graph, make_template
):
    template = make_template(wa_inbox)
    graph.queue(Reply(200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.T1"}]}))

    response = send_template(
        client,
        wa_inbox,
        {
            "name": "order_update",
            "language": "en_US",
            "parameters": {"header": ["A-1001"], "body": ["Ana", "A-1001"]},
        },
    )

    assert response.status_code == 202, response.content
    message = Message.objects.get(id=response.json()["id"])
    assert message.template_ref == template
    assert sending.message_send(message_id=message.id, attempt=1) == "accepted"
    (request,) = graph.requests
    assert request.path == "/v21.0/106540352242922/messages"
    assert request.headers["authorization"] == "Bearer test-access-token"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505076520",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "A-1001"}]},
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "A-1001"},
                    ],
                },
            ],
        },
        "biz_opaque_callback_data": correlation.make(message.id, 1),
    }


def test_named_placeholders_carry_their_names(client, wa_inbox, graph, make_template):
    make_template(
        wa_inbox,
        "reservation",
        components=[{"type": "BODY", "text": "Hi {{first_name}}, table for {{guests}}."}],
        header_params=0,
        body_params=2,
    )

    response = send_template(
        client,
        wa_inbox,
        {
            "name": "reservation",
            "language": {"code": "en_US"},
            "parameters": {"body": {"first_name": "Ana", "guests": "4"}},
        },
    )

    assert response.status_code == 202, response.content
    sent = Message.objects.get().template
    assert sent["components"] == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                {"type": "text", "parameter_name": "guests", "text": "4"},
            ],
        }
    ]


def test_a_media_header_takes_its_link(client, wa_inbox, make_template):
    make_template(
        wa_inbox,
        "spring_sale",
        components=[{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Sale!"}],
        header_params=1,
        body_params=0,
    )

    response = send_template(
        client,
        wa_inbox,
        {
            "name": "spring_sale",
            "language": "en_US",
            "parameters": {"header": ["https://example.com/sale.jpg"]},
        },
    )

    assert response.status_code == 202, response.content
    assert Message.objects.get().template["components"] == [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": "https://example.com/sale.jpg"}}],
        }
    ]


def test_a_template_never_synced_is_passed_through(client, wa_inbox):
    response = send_template(
        client,
        wa_inbox,
        {"name": "hello_world", "language": "en_US", "parameters": {"body": ["Ana"]}},
    )

    assert response.status_code == 202, response.content
    message = Message.objects.get()
    assert message.template_ref is None
    assert message.template == {
        "name": "hello_world",
        "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    }


def test_the_refusal_also_holds_for_the_agent_page(
    account, wa_inbox, make_template, django_user_model
):
    from django.test import Client

    from inbox.models import Membership
    from inbox.services import contact_get_or_create, conversation_get_or_create

    make_template(wa_inbox, status="PAUSED")
    user = django_user_model.objects.create_user("ana", password="pw")
    Membership.objects.create(user=user, account=account)
    contact = contact_get_or_create(inbox=wa_inbox, address=TO)
    conversation = conversation_get_or_create(inbox=wa_inbox, contact=contact)
    agent = Client()
    agent.force_login(user)

    response = agent.post(
        f"/conversations/{conversation.id}/send/",
        {"template_name": "order_update", "template_language": "en_US"},
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "template_not_approved"
    assert nothing_queued()
