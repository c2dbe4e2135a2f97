"""Webhook ingestion service: handshake, verify, record, parse, apply (DESIGN §5)."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from inbox.models import Inbox
from statuses import providers, services
from statuses.models import WebhookDelivery
from statuses.providers.base import MalformedPayload, ParseResult, WebhookRequest

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

    try:
        parsed = provider.parse(request, config)
    except MalformedPayload as exc:
        _record(inbox, request, Verdict.MALFORMED, 400, str(exc)[:2000])
        return _json(400, "malformed", f"Malformed payload: {exc}")
    except Exception as exc:
        # A parser bug must not lose the body: keep it for a replay once fixed; the provider
        # retries on a 500 meanwhile.
        log.exception("parser for %s failed", inbox.channel_type)
        _record(inbox, request, Verdict.ERROR, 500, f"{type(exc).__name__}: {exc}"[:2000])
        return _json(500, "parser_error", "The payload could not be processed; kept for replay.")

    parsed = _without_nul(parsed)

    from inbox import services as inbox_services

    # The delivery record and everything it changes commit together: one round of fsync, and
    # if the database fails half-way nothing is half-written (the provider retries).
    with transaction.atomic():
        count = len(parsed.statuses) + len(parsed.watermarks) + len(parsed.inbound)
        if parsed.watermarks and parsed.statuses:
            services.messages_prelock(
                inbox=inbox, updates=parsed.statuses, watermarks=parsed.watermarks
            )
        delivery = _record(inbox, request, Verdict.ACCEPTED, 200, status_count=count)
        result = services.status_updates_apply(
            inbox=inbox, updates=parsed.statuses, delivery_id=delivery.id
        )
        marks = services.watermarks_apply(
            inbox=inbox, watermarks=parsed.watermarks, delivery_id=delivery.id
        )
        if parsed.inbound:
            inbox_services.inbound_messages_store(inbox=inbox, inbound=parsed.inbound)
    log.debug(
        "webhook %s: %d items, stored %d, duplicates %d, parked %d, changed %d",
        delivery.id,
        count,
        result.stored + marks.stored,
        result.duplicates + marks.duplicates,
        result.parked,
        len(result.changes) + len(marks.changes),
    )
    return Outcome(200, b'{"ok":true}')


def raw_email_receive(*, inbox: Inbox, raw: bytes) -> tuple[Outcome, WebhookRequest]:
    """Feed one raw mail (e.g. a bounce piped in by the MTA) through the email webhook path.

    The same handshake/verify/record/parse/apply path as ``POST /webhooks/email/<id>/``, with
    the inbox's own webhook token as the credential. Returns the outcome and the request (its
    ``received_at`` names the recorded ``WebhookDelivery``).
    """
    request = WebhookRequest(
        method="POST",
        url=inbox.webhook_url,
        path=inbox.webhook_path,
        query={},
        headers={
            "content-type": "message/rfc822",
            "user-agent": "tickmark ingest_email",
            "x-webhook-token": str((inbox.config or {}).get("webhook_token") or ""),
        },
        body=raw,
        received_at=timezone.now(),
    )
    return webhook_receive(inbox=inbox, request=request), request


def _without_nul(parsed: ParseResult) -> ParseResult:
    """Drop U+0000 from parsed text: PostgreSQL text cannot hold it, so one JSON ``"\\u0000"``
    in a message or an error would fail the write — a 503 on every retry of the delivery."""

    def clean(item):
        changes = {
            f.name: value.replace("\x00", "")
            for f in dataclasses.fields(item)
            if isinstance(value := getattr(item, f.name), str) and "\x00" in value
        }
        return dataclasses.replace(item, **changes) if changes else item

    return ParseResult(
        statuses=[clean(item) for item in parsed.statuses],
        watermarks=[clean(item) for item in parsed.watermarks],
        inbound=[clean(item) for item in parsed.inbound],
    )


def _record(
    inbox: Inbox,
    request: WebhookRequest,
    verdict: str,
    http_status: int,
    detail: str = "",
    status_count: int = 0,
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
        status_count=status_count,
        received_at=request.received_at,
    )


def _json(status: int, code: str, message: str) -> Outcome:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return Outcome(status, body)
