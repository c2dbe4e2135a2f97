"""What each simulated provider answers to a send, and the signed status webhooks it plays back.

Every ``handle_*`` function takes the parsed request and the inbox (config + webhook URL) and
returns a ``SendAnswer``: the HTTP answer the real provider gives, plus the statuses it will
report later (``Report``s) — the server turns those into signed webhooks with delays.

Special recipients (the address's last digits) fail deterministically, for demos and tests:
``…0000`` is accepted, then reported failed (undeliverable); ``…9999`` is rejected at send time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from statuses.providers import twilio, viber

FAIL_LATER_SUFFIX = "0000"
REJECT_SUFFIX = "9999"


@dataclass(frozen=True)
class Inbox:
    id: str
    channel_type: str
    config: dict[str, Any]
    webhook_url: str


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # the part after /<channel_type>/<inbox_id>
    query: dict[str, list[str]]
    headers: dict[str, str]  # lowercase keys
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Report:
    """A status the provider will report: ``status`` is the provider's own word."""

    status: str
    error: tuple[str, str] | None = None  # (code, description)


@dataclass
class SendAnswer:
    status: int
    body: dict[str, Any] | list | str
    headers: dict[str, str] = field(default_factory=dict)
    provider_id: str = ""
    to: str = ""
    reports: list[Report] = field(default_factory=list)
    callback_url: str = ""  # Twilio: the per-message StatusCallback
    correlation: str = ""  # what the provider echoes back (biz_opaque_callback_data, tag)
    accepted_ms: int = 0  # the provider's own timestamp of the message (Meta watermarks)
    later: list[tuple[float, Webhook]] = field(default_factory=list)  # (delay, webhook) to play


@dataclass(frozen=True)
class Webhook:
    url: str
    body: bytes
    headers: dict[str, str]


def _suffix(address: str) -> str:
    return "".join(ch for ch in address if ch.isalnum())[-4:]


def _progress(to: str, *, reads: bool, delivers: bool = True) -> list[Report]:
    if _suffix(to) == FAIL_LATER_SUFFIX:
        return [Report("sent"), Report("failed")]
    reports = [Report("sent")]
    if delivers:
        reports.append(Report("delivered"))
    if reads:
        reports.append(Report("read"))
    return reports


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ").strip()


def _basic(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _same(given: str, expected: Any) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())


# --------------------------------------------------------------------------------------------
# Meta: WhatsApp Cloud, 360dialog, Messenger, Instagram

GRAPH_AUTH_ERROR = {
    "error": {
        "message": "Error validating access token: The session is invalid.",
        "type": "OAuthException",
        "code": 190,
        "fbtrace_id": "AbCdEfGhIjK",
    }
}
WA_UNDELIVERABLE = ("131026", "Message undeliverable")


def handle_whatsapp(inbox: Inbox, request: Request) -> SendAnswer:
    config = inbox.config
    if inbox.channel_type == "whatsapp_360dialog":
        if not _same(request.headers.get("d360-api-key", ""), config.get("api_key")):
            return SendAnswer(401, {"meta": {"success": False, "http_code": 401}})
    else:
        if not request.path.endswith(f"/{config.get('phone_number_id')}/messages"):
            return SendAnswer(404, {"error": {"message": "Unknown path", "code": 100}})
        if not _same(_bearer(request), config.get("access_token")):
            return SendAnswer(401, GRAPH_AUTH_ERROR)
    body = request.json()
    if body.get("status") == "read":
        return whatsapp_mark_read(body)
    to = str(body.get("to", ""))
    if _suffix(to) == REJECT_SUFFIX:
        return SendAnswer(
            400,
            {
                "error": {
                    "message": "(#131009) Parameter value is not valid",
                    "type": "OAuthException",
                    "code": 131009,
                    "error_data": {
                        "messaging_product": "whatsapp",
                        "details": "Recipient phone number not in allowed list",
                    },
                    "fbtrace_id": "AbCdEfGhIjK",
                }
            },
        )
    wamid = "wamid.HBgL" + base64.b64encode(secrets.token_bytes(24)).decode().rstrip("=")
    answer = {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
    }
    reports = _progress(to, reads=True)
    for report in reports:
        if report.status == "failed":
            report.error = WA_UNDELIVERABLE
    return SendAnswer(
        200,
        answer,
        provider_id=wamid,
        to=to,
        reports=reports,
        correlation=str(body.get("biz_opaque_callback_data", "")),
    )


def whatsapp_mark_read(body: dict[str, Any]) -> SendAnswer:
    """The Cloud API's "mark as read": ``{"success": true}``, nothing to report back."""
    if body.get("messaging_product") != "whatsapp" or not isinstance(body.get("message_id"), str):
        return SendAnswer(
            400,
            {
                "error": {
                    "message": "(#100) Invalid parameter",
                    "type": "OAuthException",
                    "code": 100,
                }
            },
        )
    return SendAnswer(200, {"success": True})


def whatsapp_webhook(inbox: Inbox, answer: SendAnswer, reports: list[Report]) -> Webhook:
    statuses = []
    for report in reports:
        status: dict[str, Any] = {
            "id": answer.provider_id,
            "status": report.status,
            "timestamp": str(int(time.time())),
            "recipient_id": answer.to,
        }
        if answer.correlation:
            status["biz_opaque_callback_data"] = answer.correlation
        if report.status in ("sent", "delivered"):
            status["conversation"] = {
                "id": "CONVERSATION_ID",
                "origin": {"type": "service"},
            }
            status["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
        if report.error:
            code, title = report.error
            status["errors"] = [
                {
                    "code": int(code),
                    "title": title,
                    "message": title,
                    "error_data": {
                        "details": "Message failed to send because of an unknown error."
                    },
                }
            ]
        statuses.append(status)
    phone_number_id = str(inbox.config.get("phone_number_id", "360dialog"))
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": str(inbox.config.get("waba_id", "102290129340398")),
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": statuses,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    body = json.dumps(payload).encode()
    if inbox.channel_type == "whatsapp_360dialog":
        headers = {"x-webhook-token": str(inbox.config.get("webhook_token", ""))}
    else:
        headers = {"X-Hub-Signature-256": meta_signature(inbox.config.get("app_secret"), body)}
    return Webhook(inbox.webhook_url, body, {"Content-Type": "application/json", **headers})


def meta_signature(secret: Any, body: bytes) -> str:
    return "sha256=" + hmac.new(str(secret or "").encode(), body, hashlib.sha256).hexdigest()


def handle_messaging(inbox: Inbox, request: Request) -> SendAnswer:
    """Messenger (``/me/messages?access_token=``) and Instagram (Bearer) Send API."""
    config = inbox.config
    if inbox.channel_type == "facebook":
        path = "/me/messages"
        token_ok = _same(request.query.get("access_token", [""])[-1], config["page_access_token"])
    else:
        path = f"/{config.get('ig_user_id')}/messages"
        token_ok = _same(_bearer(request), config.get("access_token"))
    if not request.path.endswith(path):
        return SendAnswer(404, {"error": {"message": "Unknown path", "code": 100}})
    if not token_ok:
        return SendAnswer(401, GRAPH_AUTH_ERROR)
    body = request.json()
    to = str((body.get("recipient") or {}).get("id", ""))
    if "sender_action" in body:
        # mark_seen (and typing_on/off): the thread is marked, no message, nothing reported.
        if body["sender_action"] not in ("mark_seen", "typing_on", "typing_off") or not to:
            return SendAnswer(400, {"error": {"message": "(#100) Invalid parameter", "code": 100}})
        return SendAnswer(200, {"recipient_id": to})
    if _suffix(to) == REJECT_SUFFIX:
        return SendAnswer(
            400,
            {
                "error": {
                    "message": "(#100) No matching user found",
                    "type": "OAuthException",
                    "code": 100,
                    "error_subcode": 2018001,
                    "fbtrace_id": "AbCdEfGhIjK",
                }
            },
        )
    mid = "m_" + secrets.token_urlsafe(24)
    accepted_ms = int(time.time() * 1000)  # Meta's own timestamp of the message
    reports = _progress(to, reads=True, delivers=inbox.channel_type == "facebook")
    # Messenger has no "sent" or "failed" webhook: delivery and read come as watermarks.
    reports = [r for r in reports if r.status in ("delivered", "read")]
    return SendAnswer(
        200,
        {"recipient_id": to, "message_id": mid},
        provider_id=mid,
        to=to,
        reports=reports,
        accepted_ms=accepted_ms,
    )


def messaging_webhook(
    inbox: Inbox, answer: SendAnswer, reports: list[Report], at: float | None = None
) -> Webhook:
    """Messenger/Instagram events. Like Meta, a watermark is the provider's timestamp of the
    newest message delivered/read (the time it accepted it), not the time of the event; the
    event's ``timestamp`` is when it happens (``at``, Unix seconds)."""
    now_ms = int((time.time() if at is None else at) * 1000)
    watermark = answer.accepted_ms or now_ms
    page_id = str(inbox.config.get("page_id") or inbox.config.get("ig_user_id") or "")
    events = []
    for report in reports:
        event: dict[str, Any] = {
            "sender": {"id": answer.to},
            "recipient": {"id": page_id},
            "timestamp": now_ms,
        }
        if report.status == "delivered":
            event["delivery"] = {"mids": [answer.provider_id], "watermark": watermark}
        elif inbox.channel_type == "instagram":
            event["read"] = {"mid": answer.provider_id}
        else:
            event["read"] = {"watermark": watermark}
        events.append(event)
    obj = "page" if inbox.channel_type == "facebook" else "instagram"
    payload = {"object": obj, "entry": [{"id": page_id, "time": now_ms, "messaging": events}]}
    body = json.dumps(payload).encode()
    signature = meta_signature(inbox.config.get("app_secret"), body)
    return Webhook(
        inbox.webhook_url,
        body,
        {"Content-Type": "application/json", "X-Hub-Signature-256": signature},
    )


# --------------------------------------------------------------------------------------------
# Twilio


def handle_twilio(inbox: Inbox, request: Request) -> SendAnswer:
    config = inbox.config
    sid = str(config.get("account_sid", ""))
    if request.path != f"/2010-04-01/Accounts/{sid}/Messages.json":
        return SendAnswer(
            404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        )
    user, password = _basic(request)
    if not (_same(user, sid) and _same(password, config.get("auth_token"))):
        return SendAnswer(
            401,
            {
                "code": 20003,
                "message": "Authentication Error - invalid username",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            },
        )
    form = request.form()
    to = form.get("To", "")
    if _suffix(to) == REJECT_SUFFIX:
        return SendAnswer(
            400,
            {
                "code": 21211,
                "message": f"The 'To' number {to} is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            },
        )
    message_sid = "SM" + secrets.token_hex(16)
    whatsapp = to.startswith("whatsapp:")
    reports = _progress(to, reads=whatsapp)
    for report in reports:
        if report.status == "failed":
            report.status = "undelivered"
            report.error = (
                ("63024", "Invalid message recipient")
                if whatsapp
                else (
                    "30003",
                    "Unreachable destination handset",
                )
            )
    answer = {
        "account_sid": sid,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From", ""),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_segments": "1",
        "sid": message_sid,
        "status": "queued",
        "to": to,
        "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
    }
    return SendAnswer(
        201,
        answer,
        provider_id=message_sid,
        to=to,
        reports=reports,
        callback_url=form.get("StatusCallback", ""),
    )


def twilio_webhook(inbox: Inbox, answer: SendAnswer, report: Report) -> Webhook | None:
    if not answer.callback_url:
        return None  # no StatusCallback: Twilio reports nothing
    params = {
        "AccountSid": str(inbox.config.get("account_sid", "")),
        "ApiVersion": "2010-04-01",
        "From": str(answer.body.get("from", "")) if isinstance(answer.body, dict) else "",
        "MessageSid": answer.provider_id,
        "MessageStatus": report.status,
        "SmsSid": answer.provider_id,
        "SmsStatus": report.status,
        "To": answer.to,
    }
    if report.error:
        params["ErrorCode"] = report.error[0]
        params["ErrorMessage"] = report.error[1]
    if report.status == "delivered":
        params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
    signature = twilio.signature_for(
        str(inbox.config.get("auth_token", "")),
        answer.callback_url,
        {k: [v] for k, v in params.items()},
    )
    return Webhook(
        answer.callback_url,
        urlencode(params).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        },
    )


# --------------------------------------------------------------------------------------------
# Bandwidth


def handle_bandwidth(inbox: Inbox, request: Request) -> SendAnswer:
    config = inbox.config
    if request.path != f"/api/v2/users/{config.get('account_id')}/messages":
        return SendAnswer(404, {"type": "not-found", "description": "Resource not found"})
    user, password = _basic(request)
    if not (_same(user, config.get("username")) and _same(password, config.get("password"))):
        return SendAnswer(401, {"type": "unauthorized", "description": "Authentication failed"})
    body = request.json()
    to = str((body.get("to") or [""])[0])
    if _suffix(to) == REJECT_SUFFIX:
        return SendAnswer(
            400,
            {
                "type": "request-validation",
                "description": "Your request could not be accepted",
                "fieldErrors": [{"fieldName": "to", "description": "'+1999' must be E164"}],
            },
        )
    message_id = f"{int(time.time() * 1000)}{secrets.token_hex(6)}"
    answer = {
        "id": message_id,
        "owner": body.get("from"),
        "applicationId": body.get("applicationId"),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "segmentCount": 1,
        "direction": "out",
        "to": body.get("to"),
        "from": body.get("from"),
        "text": body.get("text"),
        "tag": body.get("tag"),
    }
    reports = [r for r in _progress(to, reads=False) if r.status != "sent"]
    for report in reports:
        if report.status == "failed":
            report.error = ("4720", "Carrier Rejected as Invalid Destination Address")
    return SendAnswer(
        202,
        answer,
        provider_id=message_id,
        to=to,
        reports=reports,
        correlation=str(body.get("tag") or ""),
    )


def bandwidth_webhook(inbox: Inbox, answer: SendAnswer, reports: list[Report]) -> Webhook:
    events = []
    message = dict(answer.body) if isinstance(answer.body, dict) else {}
    for report in reports:
        event: dict[str, Any] = {
            "type": f"message-{report.status}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "description": "ok" if not report.error else report.error[1],
            "to": answer.to,
            "message": message,
        }
        if report.error:
            event["errorCode"] = int(report.error[0])
        events.append(event)
    credentials = f"{inbox.config.get('callback_username')}:{inbox.config.get('callback_password')}"
    return Webhook(
        inbox.webhook_url,
        json.dumps(events).encode(),
        {
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
        },
    )


# --------------------------------------------------------------------------------------------
# Viber


def handle_viber(inbox: Inbox, request: Request) -> SendAnswer:
    if request.path != "/pa/send_message":
        return SendAnswer(404, {"status": 1, "status_message": "invalidUrl"})
    if not _same(request.headers.get("x-viber-auth-token", ""), inbox.config.get("auth_token")):
        return SendAnswer(200, {"status": 2, "status_message": "invalidAuthToken"})
    body = request.json()
    to = str(body.get("receiver", ""))
    if _suffix(to) == REJECT_SUFFIX:
        return SendAnswer(200, {"status": 6, "status_message": "notSubscribed"})
    token = secrets.randbits(63) | (1 << 62)  # a 64-bit token beyond 2**53, like Viber's
    reports = [r for r in _progress(to, reads=True) if r.status != "sent"]
    for report in reports:
        if report.status == "failed":
            report.error = ("", "Message not delivered")
    return SendAnswer(
        200,
        {"status": 0, "status_message": "ok", "message_token": token, "chat_hostname": "SN-CHAT"},
        provider_id=str(token),
        to=to,
        reports=reports,
    )


def viber_webhook(inbox: Inbox, answer: SendAnswer, report: Report) -> Webhook:
    event = {"delivered": "delivered", "read": "seen", "failed": "failed"}[report.status]
    payload: dict[str, Any] = {
        "event": event,
        "timestamp": int(time.time() * 1000),
        "chat_hostname": "SN-CHAT",
        "message_token": int(answer.provider_id),
        "user_id": answer.to,
    }
    if report.error:
        payload["desc"] = report.error[1]
    body = json.dumps(payload).encode()
    signature = viber.signature(str(inbox.config.get("auth_token", "")), body)
    return Webhook(
        inbox.webhook_url,
        body,
        {"Content-Type": "application/json", "X-Viber-Content-Signature": signature},
    )


# --------------------------------------------------------------------------------------------
# Send-only providers: Telegram, LINE, TikTok (no delivery webhooks for bot messages)


def handle_telegram(inbox: Inbox, request: Request) -> SendAnswer:
    if request.path != f"/bot{inbox.config.get('bot_token')}/sendMessage":
        return SendAnswer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    body = request.json()
    chat_id = body.get("chat_id")
    if _suffix(str(chat_id)) in (REJECT_SUFFIX, FAIL_LATER_SUFFIX):
        return SendAnswer(
            403,
            {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            },
        )
    message_id = secrets.randbelow(10**6)
    result = {
        "message_id": message_id,
        "from": {"id": 123456, "is_bot": True, "first_name": "Tickmark"},
        "chat": {"id": int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id},
        "date": int(time.time()),
        "text": body.get("text", ""),
    }
    return SendAnswer(200, {"ok": True, "result": result}, provider_id=f"{chat_id}:{message_id}")


_line_keys: dict[str, str] = {}


def handle_line(inbox: Inbox, request: Request) -> SendAnswer:
    if request.path != "/v2/bot/message/push":
        return SendAnswer(404, {"message": "Not found"})
    if not _same(_bearer(request), inbox.config.get("channel_access_token")):
        return SendAnswer(
            401,
            {
                "message": "Authentication failed. Confirm that the access token "
                "in the authorization header is valid."
            },
        )
    body = request.json()
    to = str(body.get("to", ""))
    if _suffix(to) in (REJECT_SUFFIX, FAIL_LATER_SUFFIX):
        return SendAnswer(
            400,
            {"message": "The property, 'to', in the request body is invalid (line: -, column: -)"},
        )
    retry_key = request.headers.get("x-line-retry-key", "")
    if retry_key in _line_keys:
        return SendAnswer(
            409,
            {"message": "The retry key is already accepted"},
            headers={"x-line-accepted-request-id": _line_keys[retry_key]},
        )
    sent_id = str(secrets.randbelow(10**17))
    if retry_key:
        _line_keys[retry_key] = sent_id
    return SendAnswer(
        200,
        {"sentMessages": [{"id": sent_id, "quoteToken": secrets.token_urlsafe(16)}]},
        headers={"x-line-request-id": secrets.token_hex(16)},
        provider_id=sent_id,
    )


def handle_tiktok(inbox: Inbox, request: Request) -> SendAnswer:
    if not _same(request.headers.get("access-token", ""), inbox.config.get("access_token")):
        return SendAnswer(200, {"code": 40105, "message": "Access token is incorrect or revoked"})
    body = request.json()
    if _suffix(str(body.get("recipient", ""))) == REJECT_SUFFIX:
        return SendAnswer(200, {"code": 40001, "message": "Invalid recipient"})
    message_id = secrets.token_hex(12)
    return SendAnswer(
        200,
        {"code": 0, "message": "OK", "data": {"message": {"message_id": message_id}}},
        provider_id=message_id,
    )


SEND_HANDLERS = {
    "whatsapp_cloud": handle_whatsapp,
    "whatsapp_360dialog": handle_whatsapp,
    "facebook": handle_messaging,
    "instagram": handle_messaging,
    "twilio_sms": handle_twilio,
    "twilio_whatsapp": handle_twilio,
    "bandwidth_sms": handle_bandwidth,
    "viber": handle_viber,
    "telegram": handle_telegram,
    "line": handle_line,
    "tiktok": handle_tiktok,
}


def webhooks_for(
    inbox: Inbox, answer: SendAnswer, reports: list[Report], at: float | None = None
) -> list[Webhook]:
    """Build the webhook(s) that report ``reports`` (one per status on most providers);
    ``at`` (Unix seconds) is when they are played, where the payload carries an event time."""
    kind = inbox.channel_type
    if kind in ("whatsapp_cloud", "whatsapp_360dialog"):
        return [whatsapp_webhook(inbox, answer, reports)]
    if kind in ("facebook", "instagram"):
        return [messaging_webhook(inbox, answer, reports, at)]
    if kind == "bandwidth_sms":
        return [bandwidth_webhook(inbox, answer, reports)]
    if kind in ("twilio_sms", "twilio_whatsapp"):
        return [w for r in reports if (w := twilio_webhook(inbox, answer, r)) is not None]
    if kind == "viber":
        return [viber_webhook(inbox, answer, r) for r in reports]
    return []
