"""The API's two hottest calls answered before DRF and the rest of the middleware chain.

``GET /api/v1/messages/<id>`` (an integrator polling a status) and ``POST /api/v1/messages`` (a
send) are most of the API's traffic. Through the full chain each pays for the session, CSRF,
authentication and messages middlewares, URL resolving and DRF's request, negotiation,
authentication, permission and response machinery: a quarter of a lookup's CPU in a py-spy
profile of daphne, more than the database's answer (bench/README.md, issue #12).

This middleware sits after the ones that shape every response (security headers, CSP,
X-Frame-Options, the body limit), so whatever it answers leaves through them like any other
response. It answers only the **successful common case**: an active API key from the
per-process cache, no query string, a JSON ``Accept``; for a send, a JSON body of the common
shape (``inbox.api.message_input``, which accepts only what the serializer certainly accepts).
Anything else — no key, a wrong or revoked key, a session, a missing message, a template, a
refusal, a database error — passes on untouched to the full chain, which decides and words it.
A send that is refused raised inside its transaction, so it left nothing behind and the full
chain runs it again from scratch. The body is the same serializer's, rendered by the same
renderer, so both doors answer byte for byte alike (``tests/api/test_hot_path.py`` compares
them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from rest_framework import status
from rest_framework.renderers import JSONRenderer

from inbox import caches, selectors
from inbox.api import message_input, serializers, views
from inbox.api.authentication import ApiKeyAuthentication
from inbox.exceptions import InboxError
from inbox.models import Message, hash_api_key
from statuses import outbound

MESSAGES = "/api/v1/messages"
_DETAIL = re.compile(r"^/api/v1/messages/(?P<message_id>[0-9a-fA-F-]{32,36})$")
_JSON_ACCEPT = frozenset(("", "*/*", "application/json"))
_JSON_BODY = frozenset(("application/json", "application/json; charset=utf-8"))
# An outage is the full chain's to answer (503 + Retry-After, inbox.api.errors).
DB_UNAVAILABLE = (OperationalError, InterfaceError)


def _allow(view_class) -> str:
    """What DRF answers in ``Allow`` for this view: its handlers, HEAD where GET is one."""
    view = view_class()
    view.setup(HttpRequest())  # where Django gives a view with ``get`` its ``head``
    return ", ".join(view.allowed_methods)


class HotApiMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.renderer = JSONRenderer()
        self.allow_detail = _allow(views.MessageDetailView)
        self.allow_list = _allow(views.MessageListView)
        self.authenticator = ApiKeyAuthentication()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = None
        if request.path.startswith(MESSAGES) and not request.META.get("QUERY_STRING"):
            try:
                response = self.answer(request)
            except DB_UNAVAILABLE:
                response = None  # a send rolled back; the full chain answers the outage
        return response if response is not None else self.get_response(request)

    def answer(self, request: HttpRequest) -> HttpResponse | None:
        if request.META.get("HTTP_ACCEPT", "").strip() not in _JSON_ACCEPT:
            return None  # content negotiation (the browsable API, an unknown type): DRF's
        if request.method == "GET":
            match = _DETAIL.match(request.path)
            return self.lookup(request, match["message_id"]) if match else None
        if request.method == "POST" and request.path == MESSAGES:
            return self.create(request)
        return None

    def account(self, request: HttpRequest):
        try:
            raw_key = self.authenticator.raw_key(request)
        except Exception:  # a malformed header: the full chain refuses it in its words
            return None
        if raw_key is None:
            return None
        api_key = caches.api_key_get(hash_api_key(raw_key))
        if api_key is None or not api_key.is_active:
            return None  # the full chain refuses it, and counts the failure (throttling)
        self.authenticator.touch(api_key)
        return api_key.account

    def lookup(self, request: HttpRequest, message_id: str) -> HttpResponse | None:
        account = self.account(request)
        if account is None:
            return None
        message = selectors.message_get(account=account, message_id=message_id)
        if message is None:
            return None  # the 404 is the full chain's
        return self.respond(message, status.HTTP_200_OK, self.allow_detail)

    def create(self, request: HttpRequest) -> HttpResponse | None:
        if request.META.get("CONTENT_TYPE", "") not in _JSON_BODY:
            return None
        account = self.account(request)
        if account is None:
            return None
        try:
            data = json.loads(request.body.decode("utf-8"), parse_constant=_refuse_constant)
        except ValueError:  # not JSON, not UTF-8, NaN/Infinity: DRF's parser words the 400
            return None
        validated = message_input.message_create_input(data, account)
        if validated is None:
            return None
        try:
            message, created = outbound.message_create_outgoing(account=account, **validated)
        except InboxError:
            return None  # refused inside its transaction: nothing was written
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        return self.respond(message, code, self.allow_list)

    def respond(self, message: Message, code: int, allow: str) -> HttpResponse:
        body = self.renderer.render(serializers.MessageSerializer(message).data)
        response = HttpResponse(body, status=code, content_type="application/json")
        seconds = views.retry_after(message)
        if seconds is not None:
            response["Retry-After"] = str(seconds)
        response["Vary"] = "Accept"  # as DRF's content negotiation says
        response["Allow"] = allow
        response["Content-Length"] = str(len(body))  # CommonMiddleware's, which comes later
        response.hot_path = True  # which door answered (tests/api/test_hot_path.py)
        return response


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")  # as DRF's strict JSON parser
