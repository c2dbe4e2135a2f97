"""Static files in production (issue #10 item 8): WhiteNoise, compressed and hashed.

``collectstatic`` (part of every deploy, docs/deploy.md) writes hashed, gzip-compressed copies to
``STATIC_ROOT``; WhiteNoise serves them with far-future cache headers. Before collectstatic has
run (``make run``, the tests, a first start) the same middleware serves the files straight from
the app directories under their plain names, so the UI never loads without its scripts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed + compressed after ``collectstatic``; plain names before it (nothing collected)."""

    manifest_strict = False
    # The agent page is native ES modules: rewrite their relative imports to the hashed names
    # too, or a new release could run a fresh main.js against a cached old module.
    support_js_module_import_aggregation = True

    def hashed_name(self, name: str, content: Any = None, filename: str | None = None) -> str:
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            if content is not None:
                raise  # collectstatic itself: a missing file is an error
            return name  # not collected (yet): WhiteNoise serves it from the app directories


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, usable in an async middleware chain.

    WhiteNoise's middleware is sync-only; in Django's chain that would run every async view
    (the provider webhook endpoint batches webhooks on its event loop) through a thread and a
    loop of its own. Serving a file needs no I/O worth a thread, so answer it directly.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if self.autorefresh:
            static_file = self.find_file(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            served = self.serve(static_file, request)
            if isinstance(served, StreamingHttpResponse) and not served.is_async:
                served.streaming_content = _chunks(served.streaming_content)
            return served
        response: Awaitable[HttpResponseBase] = self.get_response(request)
        return await response

    def add_files(self, root: str, prefix: str | None = None) -> None:
        if root == self.static_root and not os.path.isdir(root):
            return  # collectstatic has not run: the finders serve the files (no warning)
        super().add_files(root, prefix)


async def _chunks(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """A local file's chunks for an async response (Django warns on sync iterators)."""
    for chunk in chunks:
        yield chunk
