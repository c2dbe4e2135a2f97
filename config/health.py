from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from statuses.lanes import LANES
from statuses.models import WorkerHeartbeat

DB_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER = "5"


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe: answers without touching the database."""
    return HttpResponse(b"ok", content_type="text/plain")


def healthz_worker(request: HttpRequest) -> JsonResponse:
    """Are the workers' lanes moving? 200 if each lane beat recently, else 503 (for monitoring).

    Reports ages and counts only — no host names or process ids to strangers.
    """

    now = timezone.now()
    stale_after = settings.WORKER_HEARTBEAT_STALE_AFTER
    try:
        newest = dict(
            WorkerHeartbeat.objects.values_list("lane").annotate(at=Max("seen_at")).order_by()
        )
        live = WorkerHeartbeat.objects.filter(
            lane="send", seen_at__gte=now - timedelta(seconds=stale_after)
        ).count()
    except DB_UNAVAILABLE:
        return JsonResponse(
            {"status": "database_unavailable"}, status=503, headers={"Retry-After": RETRY_AFTER}
        )
    lanes = {
        lane: round((now - newest[lane]).total_seconds(), 1) if lane in newest else None
        for lane in LANES
    }
    healthy = all(age is not None and age <= stale_after for age in lanes.values())
    return JsonResponse(
        {
            "status": "ok" if healthy else "stale",
            "workers": live,
            "lane_heartbeat_age_seconds": lanes,
            "stale_after_seconds": stale_after,
        },
        status=200 if healthy else 503,
    )


class DatabaseUnavailableMiddleware:
    """A view that hits a database outage answers 503 + Retry-After, not a 500 with a trace.

    JSON under /api/ and /webhooks/ (providers retry on a 5xx), a short text page elsewhere.
    The REST API's own exception handler does the same for DRF views (inbox.api.errors).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DB_UNAVAILABLE):
            return None
        for conn in connections.all(initialized_only=True):
            try:
                conn.close_if_unusable_or_obsolete()
            except DB_UNAVAILABLE:
                conn.close()
        headers = {"Retry-After": RETRY_AFTER}
        if request.path.startswith(("/api/", "/webhooks/")):
            body = {
                "error": {
                    "code": "database_unavailable",
                    "message": "The database is unavailable right now. Retry shortly.",
                }
            }
            return JsonResponse(body, status=503, headers=headers)
        return HttpResponse(
            b"Tickmark cannot reach its database right now. Try again in a few seconds.",
            status=503,
            content_type="text/plain; charset=utf-8",
            headers=headers,
        )


@csrf_exempt
def bench_noop(request: HttpRequest) -> HttpResponse:
    """Do nothing, for GET and POST alike: the benchmarks' ceiling (mounted only when
    ``TICKMARK_BENCH_NOOP`` is set). It reads the body, as every real view must."""
    _ = request.body
    return HttpResponse(b'{"ok":true}', content_type="application/json")


def bench_urls() -> list:
    from django.urls import path

    return [path("bench/noop", bench_noop)] if settings.TICKMARK_BENCH_NOOP else []


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness probe: 200 when the database answers, else 503 (take this process out of the
    load balancer until it does). ``/healthz`` stays the database-free liveness probe."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        response = JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ok", "database": "ok"})


def with_bench_noop(app: Callable) -> Callable:
    """Put a do-nothing bare ASGI endpoint at ``/bench/asgi-noop`` in front of ``app`` when
    ``TICKMARK_BENCH_NOOP`` is set: the ceiling of the webhook door (``statuses.asgi``), which
    skips Django's handler, as ``/bench/noop`` is the ceiling of a Django view."""
    if not settings.TICKMARK_BENCH_NOOP:
        return app

    async def bench(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] != "/bench/asgi-noop":
            return await app(scope, receive, send)
        more = True
        while more:  # read the body, as the webhook door must
            message = await receive()
            more = message.get("more_body", False) and message["type"] == "http.request"
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    return bench
