"""The contact's web widget: a page to embed, and token-authenticated JSON endpoints.

The contact's token (issued when they start a chat) is their only credential: it is sent in
the ``X-Widget-Token`` header, never in a cookie, so these endpoints need no CSRF token and a
contact can only ever read and write their own conversation.
"""

from __future__ import annotations

import json
import secrets
import uuid

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import json_error
from inbox import ratelimit, services
from inbox.forms import WidgetMessageForm, WidgetStartForm
from inbox.models import Contact, Inbox, Message
from statuses.catalogue import ChannelType
from statuses.machine import Status
from statuses.providers.base import InboundMessage

# Messages the widget has not been handed yet (the send worker pushes them when it sends).
NOT_HANDED_OVER = (Status.QUEUED, Status.FAILED, Status.EXPIRED)
HISTORY_SHOWN = 200


@require_GET
@xframe_options_exempt  # made to be embedded by embed.js on the customer's own site
def widget_page(request: HttpRequest, inbox_id: uuid.UUID) -> HttpResponse:
    inbox = _widget_inbox(inbox_id)
    config = inbox.config or {}
    return render(
        request,
        "widget/widget.html",
        {
            "inbox": inbox,
            "title": config.get("title") or inbox.name,
            "greeting": config.get("greeting", ""),
        },
    )


@csrf_exempt
@require_POST
def widget_start(request: HttpRequest, inbox_id: uuid.UUID) -> HttpResponse:
    """Start a chat: create the contact and hand back their token."""
    inbox = _widget_inbox(inbox_id)
    refusal = ratelimit.hit_each(
        [
            (
                "widget_start",
                ratelimit.request_client(request),
                ratelimit.rate_setting("TICKMARK_WIDGET_START_RATE"),
            ),
            (
                "widget_start_inbox",
                str(inbox.id),
                ratelimit.rate_setting("TICKMARK_WIDGET_START_INBOX_RATE"),
            ),
        ]
    )
    if not refusal.allowed:
        return ratelimit.too_many_requests(refusal, "Too many chats started.")
    form = WidgetStartForm(_body(request))
    if not form.is_valid():
        return json_error(400, "invalid", "Invalid name.")
    contact = services.contact_get_or_create(
        inbox=inbox, address=f"web-{secrets.token_hex(8)}", name=form.cleaned_data["name"]
    )
    services.conversation_get_or_create(inbox=inbox, contact=contact)
    return JsonResponse({"token": contact.token, "name": contact.name}, status=201)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def widget_messages(request: HttpRequest, inbox_id: uuid.UUID) -> HttpResponse:
    """GET: the contact's conversation so far. POST ``{content}``: the contact writes."""
    inbox = _widget_inbox(inbox_id)
    token = request.headers.get("X-Widget-Token", "")
    contact = Contact.objects.filter(inbox=inbox, token=token).first() if token else None
    if contact is None:
        return json_error(403, "forbidden", "Unknown or missing widget token.")
    if request.method == "POST":
        refusal = ratelimit.hit_each(
            [
                (
                    "widget_message",
                    str(contact.id),
                    ratelimit.rate_setting("TICKMARK_WIDGET_MESSAGE_RATE"),
                ),
                (
                    "widget_message_address",
                    ratelimit.request_client(request),
                    ratelimit.rate_setting("TICKMARK_WIDGET_MESSAGE_ADDRESS_RATE"),
                ),
            ]
        )
        if not refusal.allowed:
            return ratelimit.too_many_requests(refusal, "Too many messages.")
        form = WidgetMessageForm(_body(request))
        if not form.is_valid():
            return json_error(400, "invalid", "Type a message first.")
        stored = services.inbound_messages_store(
            inbox=inbox,
            inbound=[
                InboundMessage(
                    contact_address=contact.address,
                    provider_message_id=f"widget-{uuid.uuid4().hex}",
                    content=form.cleaned_data["content"],
                    occurred_at=timezone.now(),
                    contact_name=contact.name,
                )
            ],
        )
        return JsonResponse({"message": _widget_message(stored[0])}, status=201)
    messages = (
        Message.objects.filter(conversation__contact=contact)
        .exclude(direction=Message.Direction.OUTGOING, status__in=NOT_HANDED_OVER)
        .order_by("-created_at", "-id")[:HISTORY_SHOWN]
    )
    return JsonResponse(
        {
            "name": contact.name,
            "messages": [_widget_message(m) for m in reversed(messages)],
        }
    )


def _widget_inbox(inbox_id: uuid.UUID) -> Inbox:
    inbox = get_object_or_404(Inbox, id=inbox_id)
    if inbox.channel_type != ChannelType.WEB_WIDGET:
        raise Http404("Not a web widget inbox.")
    return inbox


def _widget_message(message: Message) -> dict:
    """What the contact may see of a message (no agent names, no provider details)."""
    return {
        "message_id": str(message.id),
        "from": "agent" if message.direction == Message.Direction.OUTGOING else "contact",
        "content": message.content,
        "created_at": message.created_at.isoformat(),
        "acked": message.status in (Status.DELIVERED, Status.READ),
        "read": message.status == Status.READ,
    }


def _body(request: HttpRequest) -> dict:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return request.POST.dict()
