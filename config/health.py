from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe: answers without touching the database."""
    return HttpResponse(b"ok", content_type="text/plain")


@csrf_exempt
def bench_noop(request: HttpRequest) -> HttpResponse:
    """Do nothing, for GET and POST alike: the benchmarks' ceiling (mounted only when
    ``TICKMARK_BENCH_NOOP`` is set). It reads the body, as every real view must."""
    _ = request.body
    return HttpResponse(b'{"ok":true}', content_type="application/json")


def bench_urls() -> list:
    from django.urls import path

    return [path("bench/noop", bench_noop)] if settings.TICKMARK_BENCH_NOOP else []
