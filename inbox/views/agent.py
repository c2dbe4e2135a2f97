"""The agent's inbox: conversation list, conversation view, and their JSON endpoints.

Every view is scoped to the signed-in agent's account (``Membership``); another account's
conversation or message answers 404, exactly like a missing one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.errors import json_error
from inbox.exceptions import InboxError
from inbox.forms import ComposeForm, StartConversationForm
from inbox.models import Account, Conversation, Inbox, Membership, Message
from inbox.views import presenters, template_picker
from statuses import outbound, read_receipts
from statuses.models import StatusEvent

MESSAGES_SHOWN = 200
CLIENT_KEY = re.compile(r"[A-Za-z0-9-]{16,64}")


def agent_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Require a signed-in agent and pass their account; JSON callers get 401, not a redirect."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if _wants_json(request):
                return json_error(401, "unauthenticated", "Sign in first.")
            return redirect_to_login(request.get_full_path())
        membership = Membership.objects.filter(user=request.user).select_related("account").first()
        if membership is None:
            if _wants_json(request):
                return json_error(404, "not_found", "Not found.")
            return render(request, "inbox/no_account.html", status=404)
        return view(request, membership.account, *args, **kwargs)

    return wrapper


@require_GET
@agent_view
def inbox_home(request: HttpRequest, account: Account) -> HttpResponse:
    return render(request, "inbox/app.html", _page_context(request, account))


@require_GET
@agent_view
def conversation_detail(request: HttpRequest, account: Account, pk: int) -> HttpResponse:
    conversation = _conversation(account, pk)
    read_receipts.conversation_read(conversation=conversation)
    return render(
        request,
        "inbox/app.html",
        _page_context(
            request,
            account,
            conversation=conversation,
            conversation_channel=presenters.conversation_view(conversation, None),
            bubbles=[presenters.message_view(m) for m in _recent_messages(conversation)],
            compose=presenters.compose_state(conversation),
            opt_out=presenters.opt_out_banner(conversation),
            template_picker=template_picker.picker(conversation.inbox),
            contact_panel=presenters.contact_panel(conversation),
            form=ComposeForm(),
        ),
    )


@require_GET
@agent_view
def conversation_list_fragment(request: HttpRequest, account: Account) -> HttpResponse:
    """The conversation list as HTML, re-read by the page when something changes."""
    filters = presenters.ListFilters.from_query(request.GET)
    return render(
        request,
        "inbox/_conversation_list.html",
        {
            "conversations": presenters.conversations_for(account, filters=filters),
            "current_id": _int(request.GET.get("current")),
            "filtering": filters.active,
        },
    )


@require_POST
@agent_view
def conversation_start(request: HttpRequest, account: Account) -> HttpResponse:
    """Start a conversation from the UI: an inbox, an address, a first message or template."""
    form = StartConversationForm(request.POST, account=account)
    if not form.is_valid():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _start_failed(request, 400, "invalid", message)
    inbox = form.cleaned_data["inbox"]
    try:
        message, _ = outbound.message_create_outgoing(
            account=account,
            inbox=inbox,
            to=form.cleaned_data["to"],
            content=form.cleaned_data.get("content", ""),
            template=form.template,
            sender=request.user,
        )
    except InboxError as exc:
        return _start_failed(request, exc.http_status, exc.code, exc.message)
    url = reverse("inbox:conversation", args=[message.conversation_id])
    if _wants_json(request):
        return JsonResponse(
            {"conversation_id": message.conversation_id, "url": url, **_message_body(message)},
            status=201,
        )
    return redirect(url)


def _start_failed(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if _wants_json(request):
        return json_error(status, code, message)
    from django.contrib import messages as flash

    flash.error(request, message)
    return redirect("inbox:home")


def _message_body(message: Message) -> dict[str, Any]:
    return {"message": presenters.message_json(message)}


def _page_context(request: HttpRequest, account: Account, **extra: Any) -> dict[str, Any]:
    filters = presenters.ListFilters.from_query(request.GET)
    return {
        "account": account,
        "conversations": presenters.conversations_for(account, filters=filters),
        "filters": filters,
        "filtering": filters.active,
        "filter_channels": presenters.FILTER_CHANNELS,
        "start_inboxes": presenters.start_inboxes(account),
        "agent_config": presenters.agent_config(),
        "tick_legend": presenters.tick_legend(),
        **extra,
    }


@require_GET
@agent_view
def widget_demo(request: HttpRequest, account: Account) -> HttpResponse:
    """A page that embeds the account's web widget, as a customer's site would."""
    widgets = list(
        Inbox.objects.filter(account=account, channel_type="web_widget").order_by("name")
    )
    chosen = next((w for w in widgets if str(w.id) == request.GET.get("inbox")), None)
    return render(
        request,
        "inbox/widget_demo.html",
        {
            "account": account,
            "widgets": widgets,
            "widget": chosen or (widgets[0] if widgets else None),
        },
    )


@require_GET
@agent_view
def conversation_messages_json(request: HttpRequest, account: Account, pk: int) -> HttpResponse:
    """Current state of the conversation's messages (read again after every reconnect)."""
    conversation = _conversation(account, pk)
    return JsonResponse(
        {
            "conversation_id": conversation.id,
            "compose": presenters.compose_state(conversation),
            "messages": [presenters.message_json(m) for m in _recent_messages(conversation)],
        }
    )


@require_GET
@agent_view
def conversation_bubbles_fragment(request: HttpRequest, account: Account, pk: int) -> HttpResponse:
    """Messages of the conversation as ``_message.html`` bubbles (``?id=…`` repeated), oldest
    first: the page inserts or replaces these, so no bubble is drawn by script."""
    conversation = _conversation(account, pk)
    ids = _uuids(request.GET.getlist("id")[:MESSAGES_SHOWN])
    messages = conversation.messages.filter(id__in=ids).order_by("created_at", "id")
    return render(
        request,
        "inbox/_bubbles.html",
        {"bubbles": [presenters.message_view(m) for m in messages]},
    )


@require_POST
@agent_view
def conversation_mark_read(request: HttpRequest, account: Account, pk: int) -> HttpResponse:
    read_receipts.conversation_read(conversation=_conversation(account, pk))
    return JsonResponse({"ok": True})


@require_POST
@agent_view
def message_send(request: HttpRequest, account: Account, pk: int) -> HttpResponse:
    conversation = _conversation(account, pk)
    form = ComposeForm(request.POST, max_length=presenters.max_length(conversation.inbox))
    if not form.is_valid():
        message = " ".join(e for errors in form.errors.values() for e in errors)
        return _fail(request, conversation, 400, "invalid", message)
    try:
        message, _ = outbound.message_create_outgoing(
            account=account,
            inbox=conversation.inbox,
            to=conversation.contact.address,
            content=form.cleaned_data.get("content", ""),
            template=form.template,
            sender=request.user,
            conversation=conversation,
            customer_message_id=_client_key(request),
        )
    except InboxError as exc:
        return _fail(request, conversation, exc.http_status, exc.code, exc.message)
    if _wants_json(request):
        return JsonResponse({"message": presenters.message_json(message)}, status=201)
    return redirect("inbox:conversation", pk=conversation.id)


@require_POST
@agent_view
def message_resend(request: HttpRequest, account: Account, message_id: uuid.UUID) -> HttpResponse:
    message = get_object_or_404(Message, id=message_id, account=account)
    try:
        message = outbound.message_resend(message=message)
    except InboxError as exc:
        return _fail(request, message.conversation, exc.http_status, exc.code, exc.message)
    if _wants_json(request):
        return JsonResponse({"message": presenters.message_json(message)})
    return redirect("inbox:conversation", pk=message.conversation_id)


@require_GET
@agent_view
def message_events_json(
    request: HttpRequest, account: Account, message_id: uuid.UUID
) -> HttpResponse:
    """The message's full status timeline, every attempt, oldest first."""
    message = get_object_or_404(Message, id=message_id, account=account)
    events = list(StatusEvent.objects.filter(message=message))
    return JsonResponse(
        {
            "message": presenters.message_json(message),
            "events": presenters.timeline(message, events),
        }
    )


def _conversation(account: Account, pk: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("contact", "inbox"), id=pk, account=account
    )


def _recent_messages(conversation: Conversation) -> list[Message]:
    recent = conversation.messages.order_by("-created_at", "-id")[:MESSAGES_SHOWN]
    return list(reversed(recent))


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _fail(
    request: HttpRequest, conversation: Conversation, status: int, code: str, message: str
) -> HttpResponse:
    if _wants_json(request):
        return json_error(status, code, message)
    from django.contrib import messages as flash

    flash.error(request, message)
    return redirect("inbox:conversation", pk=conversation.id)


def _client_key(request: HttpRequest) -> str | None:
    """The page's key for one typed message: a Retry after a lost answer finds the message the
    first try created instead of sending it twice."""
    key = request.POST.get("client_key", "")
    return f"agent-ui:{key}" if CLIENT_KEY.fullmatch(key) else None


def _uuids(values: list[str]) -> list[uuid.UUID]:
    parsed = []
    for value in values:
        try:
            parsed.append(uuid.UUID(value))
        except ValueError:
            continue
    return parsed


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
