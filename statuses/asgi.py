"""Provider webhooks as a bare ASGI app, in front of Django's request handling (DESIGN §12).

A provider webhook needs none of what Django's handler does per request: no session, user,
CSRF, messages or clickjacking middleware, no template context, no host-based URL
reversal. Each of those middlewares hops to a thread and back (``sync_to_async``), and every
request opens and closes a thread-sensitive context with a thread of its own: most of a
webhook's cost in a profile of daphne. This app reads the body straight from the ASGI
``receive`` channel (refusing what is too large before buffering it), builds the same
``WebhookRequest`` the Django view builds, and hands it to the same batcher, so ingestion
(verify → record → parse → apply) is one code path whichever door a webhook came through.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone

from config.errors import json_error
from inbox import ratelimit
from statuses import providers
from statuses.providers.base import WebhookRequest
from statuses.views import accept, oversize

log = logging.getLogger(__name__)

PREFIX = "/webhooks/"
_PATH = re.compile(r"^/webhooks/(?P<channel_type>[a-z0-9_]+)/(?P<inbox_id>[^/]+)/$")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def webhook_app(scope: Scope, receive: Receive, send: Send) -> None:
    match = _PATH.match(scope["path"])
    if match is None:
        return await _send_error(send, 404, "not_found", "No such webhook URL.")
    try:
        inbox_id = uuid.UUID(match["inbox_id"])
    except ValueError:
        return await _send_error(send, 404, "unknown_inbox", "No such inbox.")
    channel_type = match["channel_type"]
    method = scope["method"]
    if method not in ("GET", "POST"):
        return await _send_error(
            send, 405, "method_not_allowed", "Use POST (or GET for a handshake)."
        )
    if channel_type not in providers.REGISTRY:
        return await _send_error(send, 404, "unknown_channel", "No such channel type.")
    # Refuse an oversized body as it streams in (no buffering past the limit), as the Django
    # view does: 413 with the JSON shape, recorded without the body.
    limit = settings.TICKMARK_WEBHOOK_MAX_BYTES
    declared = _declared_length(scope)
    body = b"" if declared > limit else await _read_body(receive, limit + 1)
    query_string = scope.get("query_string", b"").decode("latin-1")
    request = WebhookRequest(
        method=method,
        url=settings.PUBLIC_BASE_URL + scope["path"] + (f"?{query_string}" if query_string else ""),
        path=scope["path"],
        # like Django's QueryDict.get: the last value of a repeated key
        query=dict(parse_qsl(query_string, keep_blank_values=True)),
        headers={
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        },
        body=body,
        received_at=timezone.now(),
        remote_addr=ratelimit.scope_client(scope),
    )
    too_large = oversize(declared, len(body), limit)
    await _send_response(send, await accept((channel_type, inbox_id, request), too_large=too_large))


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return max(int(value), 0)
            except ValueError:
                return 0
    return 0


async def _read_body(receive: Receive, at_most: int) -> bytes:
    """The body, or its first ``at_most`` bytes (the rest is not buffered)."""
    chunks = []
    size = 0
    while size < at_most:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)[:at_most]


async def _send_response(send: Send, response: HttpResponse) -> None:
    headers = [
        (name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()
    ]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json_error(status, code, message).content
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def with_webhooks(django_app: Callable) -> Callable:
    """Route ``/webhooks/…`` to ``webhook_app`` and everything else to Django."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            return await webhook_app(scope, receive, send)
        return await django_app(scope, receive, send)

    return app
