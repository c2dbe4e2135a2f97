"""Error answers for machines: under ``/api/`` and ``/webhooks/`` every error Django itself
produces (unknown URL, CSRF refusal, body too large, crash) is the JSON error shape
``{"error": {"code": ..., "message": ...}}`` — never an HTML page (DESIGN §5.1). Elsewhere
(the agent UI, the admin) Django's own pages stay.

Wired as ``handler400/403/404/500`` (config/urls.py) and ``CSRF_FAILURE_VIEW`` (settings), and
``BodyLimitMiddleware`` for API bodies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults

JSON_PREFIXES = ("/api/", "/webhooks/")
CAMPAIGNS_PATH = "/api/v1/campaigns"


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def payload_too_large(limit: int) -> JsonResponse:
    return json_error(
        413, "payload_too_large", f"The request body is larger than the {limit:,}-byte limit."
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not wants_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return json_error(400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not wants_json(request):
        return defaults.permission_denied(request, exception)
    return json_error(403, "permission_denied", "You may not do this.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not wants_json(request):
        return defaults.page_not_found(request, exception)
    return json_error(404, "not_found", "No such endpoint or object.")


def server_error(request: HttpRequest) -> HttpResponse:
    if not wants_json(request):
        return defaults.server_error(request)
    return json_error(500, "server_error", "Internal error; it has been logged.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not wants_json(request):
        return csrf.csrf_failure(request, reason)
    return json_error(403, "csrf_failed", "CSRF check failed; API clients authenticate by key.")


class BodyLimitMiddleware:
    """Refuse API bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with a JSON 413, before any
    parser reads them (DRF's JSON parser reads the stream without Django's size check).

    Webhook bodies have their own, larger limit, checked by the webhook view so that the
    refusal can be recorded against its inbox. Only headers are read here: cheap on the hot
    path, and both sync and async so an async view gains no thread hop.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        refused = self._refuse(request)
        if self.is_async:
            return self._async_call(request, refused)
        return refused or self.get_response(request)

    async def _async_call(self, request: HttpRequest, refused: HttpResponse | None):
        return refused or await self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.path == CAMPAIGNS_PATH:  # up to 100,000 recipients (DESIGN §16)
            limit = settings.TICKMARK_CAMPAIGN_MAX_BYTES
        if limit is None or not request.path.startswith("/api/"):
            return None
        if declared_length(request) > limit:
            return payload_too_large(limit)
        return None


def declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0
