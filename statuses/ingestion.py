"""Webhook ingestion service: handshake, verify, record, parse, apply (DESIGN §5)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.db import transaction

from inbox.models import Inbox
from statuses import providers, services
from statuses.models import WebhookDelivery
from statuses.providers.base import MalformedPayload, WebhookRequest

log = logging.getLogger(__name__)

Verdict = WebhookDelivery.Verdict

# Headers worth keeping with a recorded delivery; credentials (Authorization, tokens) are not.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "x-hub-signature-256",
        "x-twilio-signature",
        "x-line-signature",
        "x-viber-content-signature",
        "tiktok-signature",
        "x-request-id",
    }
)


@dataclass(frozen=True)
class Outcome:
    http_status: int
    body: bytes = b""
    content_type: str = "application/json"


def webhook_receive(*, inbox: Inbox, request: WebhookRequest) -> Outcome:
    provider = providers.get(inbox.channel_type)
    config = inbox.config or {}

    handshake = getattr(provider, "handshake", None)
    reply = handshake(request, config) if handshake else None
    if reply is not None:
        verdict = Verdict.HANDSHAKE if reply.status_code < 400 else Verdict.FORBIDDEN
        _record(inbox, request, verdict, reply.status_code, "handshake")
        return Outcome(reply.status_code, reply.body, reply.content_type)

    if request.method != "POST":
        return _json(405, "method_not_allowed", "Use POST.")

    if not provider.verify(request, config):
        _record(inbox, request, Verdict.FORBIDDEN, 403, "signature invalid or missing")
        return _json(403, "forbidden", "Signature invalid or missing.")

    delivery = _record(inbox, request, Verdict.ACCEPTED, 200)
    try:
        parsed = provider.parse(request, config)
    except MalformedPayload as exc:
        WebhookDelivery.objects.filter(id=delivery.id).update(
            verdict=Verdict.MALFORMED, http_status=400, detail=str(exc)[:2000]
        )
        return _json(400, "malformed", f"Malformed payload: {exc}")

    from inbox import services as inbox_services

    with transaction.atomic():
        result = services.status_updates_apply(
            inbox=inbox, updates=parsed.statuses, delivery_id=delivery.id
        )
        marks = services.watermarks_apply(
            inbox=inbox, watermarks=parsed.watermarks, delivery_id=delivery.id
        )
        if parsed.inbound:
            inbox_services.inbound_messages_store(inbox=inbox, inbound=parsed.inbound)
        count = len(parsed.statuses) + len(parsed.watermarks) + len(parsed.inbound)
        if count:
            WebhookDelivery.objects.filter(id=delivery.id).update(
                status_count=count,
                detail=(
                    f"stored {result.stored + marks.stored}, duplicates "
                    f"{result.duplicates + marks.duplicates}, parked {result.parked}, "
                    f"changed {len(result.changes) + len(marks.changes)}"
                ),
            )
    return Outcome(200, b'{"ok":true}')


def _record(
    inbox: Inbox, request: WebhookRequest, verdict: str, http_status: int, detail: str = ""
) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        inbox=inbox,
        channel_type=inbox.channel_type,
        method=request.method,
        path=request.path[:500],
        headers={k: v for k, v in request.headers.items() if k in KEPT_HEADERS},
        body=request.body,
        verdict=verdict,
        http_status=http_status,
        detail=detail,
        received_at=request.received_at,
    )


def _json(status: int, code: str, message: str) -> Outcome:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return Outcome(status, body)
