"""Provider webhook endpoint (DESIGN §5): verify, record, parse, delegate. No business logic."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from inbox.models import Inbox
from statuses import ingestion, providers
from statuses.providers.base import WebhookRequest

log = logging.getLogger(__name__)


@csrf_exempt
def provider_webhook(request: HttpRequest, channel_type: str, inbox_id: uuid.UUID) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    if channel_type not in providers.REGISTRY:
        return _error(404, "unknown_channel", "No such channel type.")
    body = request.body  # read the raw bytes once, first: signatures are over these exact bytes
    try:
        inbox = Inbox.objects.filter(id=inbox_id, channel_type=channel_type).first()
    except (OperationalError, InterfaceError):
        return _unavailable()
    if inbox is None:
        return _error(404, "unknown_inbox", "No such inbox.")

    webhook_request = WebhookRequest(
        method=request.method,
        url=settings.PUBLIC_BASE_URL + request.get_full_path(),
        path=request.path,
        query={k: request.GET.get(k, "") for k in request.GET},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        received_at=timezone.now(),
    )
    try:
        outcome = ingestion.webhook_receive(inbox=inbox, request=webhook_request)
    except (OperationalError, InterfaceError):
        log.warning("database unavailable while receiving a %s webhook", channel_type)
        return _unavailable()
    except DatabaseError:
        log.exception("webhook processing failed for inbox %s", inbox.id)
        return _unavailable()
    response = HttpResponse(
        outcome.body, status=outcome.http_status, content_type=outcome.content_type
    )
    return response


def _unavailable() -> HttpResponse:
    response = _error(503, "unavailable", "Temporarily unavailable, please retry.")
    response["Retry-After"] = "5"
    return response


def _error(status: int, code: str, message: str) -> HttpResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)
