import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from statuses.models import OutgoingAttempt, OutgoingEvent, WebhookSubscription


def count_queries(client, url):
    client.get(url)  # warm up: last_used_at write, session, …
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/messages?page_size={n}",
        "/api/v1/messages?page_size={n}&is_terminal=false&channel=WHATSAPP",
        "/api/v1/whatsapp/messages?page_size={n}",
        "/api/v1/conversations?page_size={n}",
        "/api/v1/inboxes?page_size={n}",
        "/api/v1/webhooks?page_size={n}",
        "/api/v1/webhooks/{sub}/deliveries?page_size={n}",
        "/api/v1/conversations/{conv}/messages?page_size={n}",
        "/api/v1/messages/{msg}/events",
    ],
)
def test_list_queries_do_not_grow_with_page_size(
    client, account, inbox, make_inbox, make_message, url
):
    from statuses import services

    messages = []
    for i in range(30):
        make_inbox(account, "web_widget")
        message = make_message(inbox, to=f"+1650500{i:04d}")
        services.message_status_report(message=message, status="sent", source="webhook")
        messages.append(message)
    same_conversation = [make_message(inbox, to="+16505000000") for _ in range(10)]
    subscription = None
    for i in range(30):
        subscription = WebhookSubscription.objects.create(account=account, url=f"https://e.com/{i}")
    event = OutgoingEvent.objects.create(subscription=subscription, event_type="x", payload={})
    OutgoingAttempt.objects.bulk_create(OutgoingAttempt(event=event) for _ in range(30))

    fmt = dict(sub=subscription.id, conv=same_conversation[0].conversation_id, msg=messages[0].id)
    small, small_body = count_queries(client, url.format(n=2, **fmt))
    large, large_body = count_queries(client, url.format(n=25, **fmt))
    assert small == large
    assert small <= 3  # key lookup, (parent object), one page query
    if isinstance(large_body, dict):
        assert len(large_body["results"]) > len(small_body["results"])
