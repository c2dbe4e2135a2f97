from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe: answers without touching the database (also the benchmarks' baseline)."""
    return HttpResponse(b"ok", content_type="text/plain")


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
