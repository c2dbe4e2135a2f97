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

Three more costs of the stock handler are gone (py-spy of daphne creating and looking up
messages through the API, bench/README.md):

- Django wraps every request in a ``ThreadSensitiveContext``, which starts a thread for that
  request and joins it afterwards: ~12 % of the event loop's time went to starting and joining
  threads. Here there is no per-request context.
- All sync code ran on one thread, so while one request waited for PostgreSQL (most of a
  message creation: a few round trips and a commit) no other request moved. On PostgreSQL a
  request runs on one of ``REQUEST_THREADS`` threads, each with its own pooled connection; the
  whole request — opening and returning its connection included — stays on that one thread.
  SQLite (the embedded mode) keeps the single thread: it has one writer anyway.
- The stock handler sends ``request_started`` from the event loop (``Signal.asend``: a hop to a
  thread for its sync receivers, ``close_old_connections`` and ``reset_queries``), and closes
  the response with another hop (``response.close()`` sends ``request_finished``). Those
  receivers act on the calling thread's connection, which is not the one the view used. Here
  both run in the request's own hop, on the thread the view ran on: one hop per request instead
  of three (a streamed response — static files — is still closed after it is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponseBase
from django.urls import set_script_prefix


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

    async def handle(self, scope, receive, send) -> None:
        """``ASGIHandler.handle`` (Django 5.2), with ``request_started`` and the closing of a
        response that is not streamed moved into the request's hop (``_respond``)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away
                await self.send_response(response, send)
            return response

        # As Django does: the disconnect listener first, so that it cannot keep the request
        # from being cancelled.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass  # the client went away
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if response.streaming:
                await sync_to_async(response.close)()
        body_file.close()

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if self.executor is None:
            return await sync_to_async(self._respond, thread_sensitive=True)(request)
        return await sync_to_async(self._respond, thread_sensitive=False, executor=self.executor)(
            request
        )

    def _respond(self, request: HttpRequest) -> HttpResponseBase:
        """The request on its thread, from ``request_started`` to ``request_finished``: a
        database connection belongs to the thread that opened it, so the connection is checked
        and given back to the pool (``close_old_connections``, a receiver of both signals) here,
        on the thread the view ran on. A streamed response is closed once it has been sent."""
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        try:
            response = self.get_response(request)
        except BaseException:
            close_old_connections()
            raise
        response._handler_class = self.__class__
        if not response.streaming:
            response.close()  # request_finished: the connection goes back to the pool now
        return response
