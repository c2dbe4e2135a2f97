"""Django's ASGI handler with the middleware chain run synchronously, in one hop, on a small
pool of request threads.

Tickmark's views are synchronous (DRF, the agent pages). Under Django's stock ASGI handler the
middleware chain runs in async mode: every ``MiddlewareMixin`` hops to a thread and back for
its ``process_request`` and again for ``process_response`` — a dozen thread switches around
each sync view, and one sync-only middleware in the list makes Django adapt the chain in both
directions besides. Here the chain is loaded in sync mode and a request makes one hop into a
thread for all of it, the same work a WSGI server does per request. Async views still work
(Django adapts them with ``async_to_sync``); provider webhooks do not come through here at all
(``statuses.asgi``).

Two more costs of the stock handler are gone (py-spy of daphne creating messages through the
API, bench/README.md):

- Django wraps every request in a ``ThreadSensitiveContext``, which starts a thread for that
  request and joins it afterwards: ~12 % of the event loop's time went to starting and joining
  threads. Here there is no per-request context.
- All sync code ran on one thread, so while one request waited for PostgreSQL (most of a
  message creation: a few round trips and a commit) no other request moved. On PostgreSQL a
  request runs on one of ``REQUEST_THREADS`` threads, each with its own pooled connection; the
  whole request — opening and returning its connection included — stays on that one thread.
  SQLite (the embedded mode) keeps the single thread: it has one writer anyway.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)
        threads = settings.REQUEST_THREADS if connection.vendor == "postgresql" else 1
        self.executor = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tickmark-request")
            if threads > 1
            else None
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # Django's own __call__ wraps this in ThreadSensitiveContext (a thread per request).
        await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if self.executor is None:
            return await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return await sync_to_async(self._respond, thread_sensitive=False, executor=self.executor)(
            request
        )

    def _respond(self, request: HttpRequest) -> HttpResponseBase:
        """The request on a pool thread. Django's request_started and request_finished signals
        run on another thread (the handler sends them from the event loop), and a database
        connection belongs to the thread that opened it: so the connection is checked and
        given back to the pool here, on this thread, before and after the view."""
        close_old_connections()
        try:
            return self.get_response(request)
        finally:
            close_old_connections()
