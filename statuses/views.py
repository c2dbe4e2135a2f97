"""Provider webhook endpoint (DESIGN §5): verify, record, parse, delegate. No business logic.

(An async variant that ran ingestion in a thread pool measured no faster on the 2-core bench
machine — the path is CPU-bound — so the view stays a plain sync view.)
"""

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
    webhook_request = WebhookRequest(
        method=request.method,
        url=settings.PUBLIC_BASE_URL + request.get_full_path(),
        path=request.path,
        query={k: request.GET.get(k, "") for k in request.GET},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=request.body,  # the raw bytes: signatures are over these exact bytes
        received_at=timezone.now(),
    )
    return _receive(channel_type, inbox_id, webhook_request)


def _receive(channel_type: str, inbox_id: uuid.UUID, request: WebhookRequest) -> HttpResponse:
    try:
        inbox = Inbox.objects.filter(id=inbox_id, channel_type=channel_type).first()
        if inbox is None:
            return _error(404, "unknown_inbox", "No such inbox.")
        outcome = ingestion.webhook_receive(inbox=inbox, request=request)
    except (OperationalError, InterfaceError):
        log.warning("database unavailable while receiving a %s webhook", channel_type)
        return _unavailable()
    except DatabaseError:
        log.exception("webhook processing failed for inbox %s", inbox_id)
        return _unavailable()
    return HttpResponse(outcome.body, status=outcome.http_status, content_type=outcome.content_type)


def _unavailable() -> HttpResponse:
    response = _error(503, "unavailable", "Temporarily unavailable, please retry.")
    response["Retry-After"] = "5"
    return response


def _error(status: int, code: str, message: str) -> HttpResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)
