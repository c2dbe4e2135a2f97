"""Django's ASGI handler with the middleware chain run synchronously, in one hop.

Tickmark's views are synchronous (DRF, the agent pages). Under Django's stock ASGI handler the
middleware chain runs in async mode: every ``MiddlewareMixin`` hops to a thread and back for
its ``process_request`` and again for ``process_response`` — a dozen thread switches around
each sync view, and one sync-only middleware in the list makes Django adapt the chain in both
directions besides. Here the chain is loaded in sync mode and a request makes one hop into the
thread-sensitive thread for all of it, the same work a WSGI server does per request. Async
views still work (Django adapts them with ``async_to_sync``); provider webhooks do not come
through here at all (``statuses.asgi``).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
