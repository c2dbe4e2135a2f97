"""Webhook ingestion service: handshake, verify, record, parse, apply (DESIGN §5)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from inbox import consent
from inbox import services as inbox_services
from inbox.models import Inbox
from statuses import machine, providers, rejections, services, templates
from statuses.models import WebhookDelivery
from statuses.providers.base import MalformedPayload, ParseResult, SkipKind, WebhookRequest

log = logging.getLogger(__name__)

Verdict = WebhookDelivery.Verdict

# Headers worth keeping with any recorded delivery; each provider adds its signature headers
# (``ProviderSpec.kept_headers``). Credentials (Authorization, tokens) are never kept.
COMMON_KEPT_HEADERS = frozenset({"content-type", "content-length", "user-agent", "x-request-id"})


@dataclass(frozen=True)
class WebhookAnswer:
    """What the webhook door answers the provider (status, body, headers)."""

    http_status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


OK = WebhookAnswer(200, b'{"ok":true}')
# Skipped entries kept on one delivery (with the entry itself); the raw body keeps the rest.
MAX_NOTES = 100


@dataclass
class _Accepted:
    index: int
    inbox: Inbox
    request: WebhookRequest
    parsed: ParseResult


def webhook_receive(*, inbox: Inbox, request: WebhookRequest) -> WebhookAnswer:
    return webhooks_receive([(inbox, request)])[0]


def webhooks_receive(
    items: Sequence[tuple[Inbox, WebhookRequest]],
    *,
    before_commit: Callable[[], None] | None = None,
) -> list[WebhookAnswer]:
    """Receive webhooks that arrived together: answer each one, and record and apply all the
    accepted ones in one transaction (one commit, one set of statements per inbox) — under
    load the server hands in several at a time, so the per-webhook cost falls with the load.

    If the database fails, the exception propagates (→ 503 for all, nothing half-written). Any
    other failure of a joint apply retries the webhooks one by one, so one bad delivery never
    costs the others their answer.

    ``before_commit`` is called once the joint transaction has taken every lock it takes and
    written everything, just before its ``COMMIT`` (the webhook lanes pass their baton there,
    ``statuses.views``); it is not called for the one-by-one retries.
    """
    outcomes: list[WebhookAnswer | None] = [None] * len(items)
    accepted: list[_Accepted] = []
    for index, (inbox, request) in enumerate(items):
        outcome, parsed = _check(inbox, request)
        if outcome is not None:
            outcomes[index] = outcome
        else:
            accepted.append(_Accepted(index, inbox, request, parsed))
    if len(accepted) > 1:
        try:
            _apply(accepted, before_commit)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("joint apply of %d webhooks failed; applying one by one", len(accepted))
            for item in accepted:
                _apply([item])
    elif accepted:
        _apply(accepted, before_commit)
    for item in accepted:
        outcomes[item.index] = OK
    return outcomes  # type: ignore[return-value]


def _check(inbox: Inbox, request: WebhookRequest) -> tuple[WebhookAnswer | None, ParseResult]:
    """Handshake, verify and parse; answer (and record) whatever is not an accepted delivery."""
    provider = providers.get(inbox.channel_type)
    config = inbox.config or {}
    nothing = ParseResult()

    reply = provider.handshake(request, config)
    if reply is not None:
        outcome = WebhookAnswer(reply.status_code, reply.body, reply.content_type)
        if reply.status_code >= 400:
            return _rejected(inbox, request, outcome, "handshake refused"), nothing
        _record(inbox, request, Verdict.HANDSHAKE, reply.status_code, "handshake")
        return outcome, nothing

    if request.method != "POST":
        return _json(405, "method_not_allowed", "Use POST."), nothing

    if not provider.verify(request, config):
        forbidden = _json(403, "forbidden", "Signature invalid or missing.")
        return _rejected(inbox, request, forbidden, "signature invalid or missing"), nothing

    try:
        parsed = provider.parse(request, config)
    except MalformedPayload as exc:
        _record(inbox, request, Verdict.MALFORMED, 400, str(exc)[:2000])
        return _json(400, "malformed", f"Malformed payload: {exc}"), nothing
    except Exception as exc:
        # A parser bug must not lose the body: keep it for a replay once fixed; the provider
        # retries on a 500 meanwhile.
        log.exception("parser for %s failed", inbox.channel_type)
        _record(inbox, request, Verdict.ERROR, 500, f"{type(exc).__name__}: {exc}"[:2000])
        return (
            _json(500, "parser_error", "The payload could not be processed; kept for replay."),
            nothing,
        )
    return None, _inbound_not_ahead(_without_nul(parsed), request.received_at)


def _apply(accepted: list[_Accepted], before_commit: Callable[[], None] | None = None) -> None:
    """Record the deliveries and apply what they say, in one transaction.

    Inboxes are applied in id order, so two batches never lock each other's rows in opposite
    orders. The delivery records commit together with their effects: if the database fails
    half-way nothing is half-written (the provider retries).
    """
    with transaction.atomic():
        wanted = sorted(
            {
                (item.inbox.id, update.provider_message_id)
                for item in accepted
                for update in item.parsed.statuses
                if update.provider_message_id
            }
        )
        delivery_ids, found = services.deliveries_store_and_find(
            [_accepted_values(item) for item in accepted], wanted
        )
        by_inbox: dict[uuid.UUID, list[tuple[_Accepted, int]]] = defaultdict(list)
        for item, delivery_id in zip(accepted, delivery_ids, strict=True):
            by_inbox[item.inbox.id].append((item, delivery_id))
        for inbox_id in sorted(by_inbox):
            group = by_inbox[inbox_id]
            inbox = group[0][0].inbox
            updates = [u for item, _ in group for u in item.parsed.statuses]
            update_deliveries = [d for item, d in group for _ in item.parsed.statuses]
            marks = [w for item, _ in group for w in item.parsed.watermarks]
            mark_deliveries = [d for item, d in group for _ in item.parsed.watermarks]
            inbound = [m for item, _ in group for m in item.parsed.inbound]
            deletions = [d for item, _ in group for d in item.parsed.deletions]
            if marks and updates:
                services.messages_prelock(inbox=inbox, updates=updates, watermarks=marks)
            services.status_updates_apply(
                inbox=inbox,
                updates=updates,
                delivery_ids=update_deliveries,
                found=None if found is None else found.get(inbox_id, {}),
            )
            services.watermarks_apply(inbox=inbox, watermarks=marks, delivery_ids=mark_deliveries)
            if inbound:
                inbox_services.inbound_messages_store(inbox=inbox, inbound=inbound)
            if deletions:
                inbox_services.inbound_deletions_apply(inbox=inbox, deletions=deletions)
            consent.webhook_consents_apply(
                inbox=inbox,
                changes=[c for item, _ in group for c in item.parsed.consents],
                change_delivery_ids=[d for item, d in group for _ in item.parsed.consents],
                updates=updates,
                update_delivery_ids=update_deliveries,
            )
            if template_updates := [t for item, _ in group for t in item.parsed.templates]:
                templates.template_updates_apply(inbox=inbox, updates=template_updates)
        if before_commit is not None:
            before_commit()


def _accepted_values(item: _Accepted) -> dict[str, object]:
    """The record of an accepted delivery, as values by field (``rowsql.insert_values``):
    what it applied, and every entry it skipped with the reason (``notes``), so an admin sees
    what a readable body did not change."""
    parsed = item.parsed
    skipped = parsed.skipped
    for skip in skipped:
        if skip.kind == SkipKind.PROVIDER_ERROR:
            log.warning(
                "%s inbox %s: provider reported error %s: %s",
                item.inbox.channel_type,
                item.inbox.id,
                skip.code or "?",
                skip.reason,
            )
    unapplied = [s for s in skipped if s.kind in (SkipKind.MALFORMED, SkipKind.INVALID_SENDER)]
    if unapplied:
        verdict = Verdict.PARTIAL
    elif skipped and not parsed.applied_count:
        verdict = Verdict.IGNORED
    else:
        verdict = Verdict.ACCEPTED
    counts: dict[str, int] = defaultdict(int)
    for skip in skipped:
        counts[str(skip.kind)] += 1
    detail = "; ".join(f"{n} {kind}" for kind, n in counts.items())
    if unapplied:
        detail += " — first: " + unapplied[0].reason
    values = _delivery_values(
        item.inbox,
        item.request,
        verdict,
        200,
        detail[:2000],
        status_count=parsed.applied_count,
    )
    values["notes"] = [_json_safe(skip.as_note()) for skip in skipped[:MAX_NOTES]]
    return values


def _json_safe(value: object) -> object:
    """Drop U+0000 from strings (PostgreSQL ``jsonb`` cannot hold it), and keep NaN and
    infinities (Python's JSON reads ``NaN``, ``1e999``; no JSON column stores them) as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def too_large_record(
    *, channel_type: str, inbox_id: uuid.UUID, request: WebhookRequest, detail: str
) -> None:
    """Record a webhook refused for its size: who sent what, how big — without the body."""
    inbox = Inbox.objects.filter(id=inbox_id, channel_type=channel_type).first()
    WebhookDelivery.objects.create(
        inbox=inbox,
        channel_type=channel_type,
        method=request.method,
        path=request.path[:500],
        headers=_kept_headers(channel_type, request),
        body=b"",
        verdict=Verdict.TOO_LARGE,
        http_status=413,
        detail=detail,
        received_at=request.received_at,
    )
    log.warning("webhook for %s %s refused: %s", channel_type, inbox_id, detail)


def raw_email_receive(*, inbox: Inbox, raw: bytes) -> tuple[WebhookAnswer, WebhookRequest]:
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
            name: value.replace("\x00", "")
            for name in _field_names(type(item))
            if isinstance(value := getattr(item, name), str) and "\x00" in value
        }
        return dataclasses.replace(item, **changes) if changes else item

    return ParseResult(
        statuses=[clean(item) for item in parsed.statuses],
        watermarks=[clean(item) for item in parsed.watermarks],
        inbound=[clean(item) for item in parsed.inbound],
        deletions=[clean(item) for item in parsed.deletions],
        skipped=parsed.skipped,
        consents=[clean(item) for item in parsed.consents],
        templates=[clean(item) for item in parsed.templates],
    )


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _rejected(
    inbox: Inbox, request: WebhookRequest, outcome: WebhookAnswer, detail: str
) -> WebhookAnswer:
    """Record a rejected call (without its body), or answer 429 unrecorded once its source
    is over the limit for this inbox (``statuses.rejections``)."""
    wait = rejections.over_limit(inbox.id, request.remote_addr)
    if wait is not None:
        limited = _json(429, "rate_limited", "Too many rejected requests; slow down.")
        return dataclasses.replace(limited, headers={"Retry-After": str(wait)})
    _record(inbox, request, Verdict.FORBIDDEN, outcome.http_status, detail)
    return outcome


def _inbound_not_ahead(parsed: ParseResult, received_at: datetime) -> ParseResult:
    """An inbound message's time becomes its created/sent/delivered times: a provider clock
    more than 5 minutes ahead of ours gives way to the time received (DESIGN §5.1), or the
    message would sort below everything newer and stretch the service window. (Statuses keep
    their raw time; the merge clamps them.)"""
    latest = received_at + machine.FUTURE_TOLERANCE
    if all(item.occurred_at <= latest for item in parsed.inbound):
        return parsed
    inbound = [
        dataclasses.replace(item, occurred_at=received_at) if item.occurred_at > latest else item
        for item in parsed.inbound
    ]
    return dataclasses.replace(parsed, inbound=inbound)


def _record(
    inbox: Inbox, request: WebhookRequest, verdict: str, http_status: int, detail: str = ""
) -> WebhookDelivery:
    values = _delivery_values(inbox, request, verdict, http_status, detail)
    del values["inbox_id"]
    delivery = WebhookDelivery(inbox=inbox, **values)
    delivery.save()
    return delivery


def _delivery_values(
    inbox: Inbox,
    request: WebhookRequest,
    verdict: str,
    http_status: int,
    detail: str = "",
    status_count: int = 0,
) -> dict[str, object]:
    """Every field of a delivery's record, by attribute name (the one source for both
    ``_record``'s model instance and the accepted batch's rows)."""
    return {
        "inbox_id": inbox.id,
        "channel_type": inbox.channel_type,
        "method": request.method,
        "path": request.path[:500],
        "headers": _kept_headers(inbox.channel_type, request),
        # A rejected call comes from anyone: its size and hash are kept, never its bytes.
        "body": b"" if verdict == Verdict.FORBIDDEN else request.body,
        "body_size": len(request.body),
        "body_sha256": hashlib.sha256(request.body).hexdigest(),
        "verdict": verdict,
        "http_status": http_status,
        "detail": detail,
        "status_count": status_count,
        "received_at": request.received_at,
        "notes": [],
    }


def _json(status: int, code: str, message: str) -> WebhookAnswer:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return WebhookAnswer(status, body)


def _kept_headers(channel_type: str, request: WebhookRequest) -> dict[str, str]:
    kept = COMMON_KEPT_HEADERS | providers.kept_headers(channel_type)
    return {k: v for k, v in request.headers.items() if k in kept}
