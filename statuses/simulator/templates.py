"""The simulator's WhatsApp template APIs (DESIGN §13): Graph's ``/{waba_id}/message_templates``
and 360dialog's ``/v1/configs/templates``, over a few demo templates per inbox (approved,
pending, rejected, paused). A template created here is answered ``PENDING`` and approved a few
seconds later by a signed ``message_template_status_update`` webhook, as Meta's review does —
so ``make run`` shows a new template change status live.

State lives in memory, per inbox, for as long as the simulator runs.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from statuses.simulator.providers import (
    GRAPH_AUTH_ERROR,
    Inbox,
    Request,
    SendAnswer,
    Webhook,
    _bearer,
    _same,
    meta_signature,
)

# Seconds between a template's creation and Meta's (simulated) approval.
REVIEW_DELAY = 3.0
DEFAULT_WABA_ID = "102290129340398"
D360_PATH = "/v1/configs/templates"

DEMO_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "order_update",
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."},
            {"type": "FOOTER", "text": "Tickmark demo shop"},
        ],
    },
    {
        "name": "welcome_back",
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "BODY",
                "text": "Welcome back, {{first_name}}! Reply to pick up where we left.",
            }
        ],
    },
    {
        "name": "appointment_reminder",
        "language": "en_US",
        "status": "PENDING",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Reminder: your appointment is on {{1}}."}],
    },
    {
        "name": "spring_sale",
        "language": "en_US",
        "status": "REJECTED",
        "rejected_reason": "PROMOTIONAL",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "50% off everything this weekend!"}],
    },
    {
        "name": "survey_invite",
        "language": "en_US",
        "status": "PAUSED",
        "rejected_reason": "Low quality: many users blocked this template",
        "category": "MARKETING",
        "quality_score": {"score": "RED"},
        "components": [{"type": "BODY", "text": "How did we do, {{1}}?"}],
    },
]

_lock = threading.Lock()
_templates: dict[str, list[dict[str, Any]]] = {}
_ids = iter(range(900000000001, 10**12))


def _of(inbox: Inbox) -> list[dict[str, Any]]:
    with _lock:
        if inbox.id not in _templates:
            _templates[inbox.id] = [{**t, "id": str(next(_ids))} for t in DEMO_TEMPLATES]
        return _templates[inbox.id]


def is_template_path(channel_type: str, path: str) -> bool:
    if channel_type == "whatsapp_cloud":
        return path.rstrip("/").endswith("/message_templates")
    return channel_type == "whatsapp_360dialog" and path.startswith(D360_PATH)


def handle(inbox: Inbox, request: Request) -> SendAnswer:
    """Answer a template call (list, create or delete) as Meta or 360dialog would."""
    if inbox.channel_type == "whatsapp_360dialog":
        if not _same(request.headers.get("d360-api-key", ""), inbox.config.get("api_key")):
            return SendAnswer(401, {"meta": {"success": False, "http_code": 401}})
    elif not _same(_bearer(request), inbox.config.get("access_token")):
        return SendAnswer(401, GRAPH_AUTH_ERROR)
    if request.method == "GET":
        return _list(inbox, request)
    if request.method == "POST":
        return _create(inbox, request)
    if request.method == "DELETE":
        return _delete(inbox, request)
    return SendAnswer(405, {"error": {"message": "Unsupported method", "code": 100}})


def _first(request: Request, name: str, default: str = "") -> str:
    return (request.query.get(name) or [default])[0]


def _shown(template: dict[str, Any]) -> dict[str, Any]:
    """A template as listed: approved once its review time has passed."""
    shown = {k: v for k, v in template.items() if k != "approved_at"}
    if template.get("approved_at", float("inf")) <= time.monotonic():
        shown["status"] = "APPROVED"
    return shown


def _list(inbox: Inbox, request: Request) -> SendAnswer:
    templates = [_shown(t) for t in _of(inbox)]
    limit = max(1, min(int(_first(request, "limit", "100")), 100))
    if inbox.channel_type == "whatsapp_360dialog":
        offset = int(_first(request, "offset", "0"))
        page = templates[offset : offset + limit]
        return SendAnswer(
            200,
            {
                "count": len(page),
                "total": len(templates),
                "offset": offset,
                "limit": limit,
                "waba_templates": page,
            },
        )
    after = int(_first(request, "after", "0") or 0)
    page = templates[after : after + limit]
    body: dict[str, Any] = {"data": page, "paging": {"cursors": {"before": str(after)}}}
    if after + limit < len(templates):
        query = {k: v[0] for k, v in request.query.items()} | {"after": str(after + limit)}
        host = request.headers.get("host", "127.0.0.1")
        body["paging"]["next"] = (
            f"http://{host}/{inbox.channel_type}/{inbox.id}{request.path}?{urlencode(query)}"
        )
    return SendAnswer(200, body)


def _create(inbox: Inbox, request: Request) -> SendAnswer:
    body = request.json()
    name, language = str(body.get("name", "")), str(body.get("language", ""))
    templates = _of(inbox)
    if any(t["name"] == name and t["language"] == language for t in templates):
        return SendAnswer(
            400,
            {
                "error": {
                    "message": "Invalid parameter",
                    "type": "OAuthException",
                    "code": 100,
                    "error_subcode": 2388024,
                    "error_user_title": "Content in this language already exists",
                    "error_user_msg": f"{name} already has content in {language}.",
                }
            },
        )
    template = {
        "id": str(next(_ids)),
        "name": name,
        "language": language,
        "status": "PENDING",
        "category": str(body.get("category", "UTILITY")),
        "components": body.get("components") or [],
    }
    with _lock:
        templates.append(template)
    answer = SendAnswer(
        200, {"id": template["id"], "status": "PENDING", "category": template["category"]}
    )
    template["approved_at"] = time.monotonic() + REVIEW_DELAY
    answer.later.append((REVIEW_DELAY, _approval(inbox, template)))
    return answer


def _approval(inbox: Inbox, template: dict[str, Any]) -> Webhook:
    """The webhook of Meta's review verdict for ``template``: approved."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": str(inbox.config.get("waba_id") or DEFAULT_WABA_ID),
                "time": int(time.time()),
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "APPROVED",
                            "message_template_id": int(template["id"]),
                            "message_template_name": template["name"],
                            "message_template_language": template["language"],
                            "message_template_category": template["category"],
                            "reason": "NONE",
                        },
                    }
                ],
            }
        ],
    }
    raw = json.dumps(payload).encode()
    if inbox.channel_type == "whatsapp_360dialog":
        headers = {"x-webhook-token": str(inbox.config.get("webhook_token", ""))}
    else:
        headers = {"X-Hub-Signature-256": meta_signature(inbox.config.get("app_secret"), raw)}
    return Webhook(inbox.webhook_url, raw, {"Content-Type": "application/json", **headers})


def _delete(inbox: Inbox, request: Request) -> SendAnswer:
    if inbox.channel_type == "whatsapp_360dialog":
        name, hsm_id = request.path.rsplit("/", 1)[-1], ""
    else:
        name, hsm_id = _first(request, "name"), _first(request, "hsm_id")
    templates = _of(inbox)
    with _lock:
        kept = [t for t in templates if not (t["name"] == name and hsm_id in ("", t["id"]))]
        if len(kept) == len(templates):
            return SendAnswer(
                400, {"error": {"message": f"Template {name} not found", "code": 100}}
            )
        templates[:] = kept
    return SendAnswer(200, {"success": True})
