from django.http import HttpRequest, HttpResponse


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe: answers without touching the database (also the benchmarks' baseline)."""
    return HttpResponse(b"ok", content_type="text/plain")
