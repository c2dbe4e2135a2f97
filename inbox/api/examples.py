"""OpenAPI examples (drf-spectacular), kept out of the views so those stay readable."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

from inbox.api.schema import ErrorResponse

ERROR_RESPONSE = ErrorResponse

_MESSAGE_ID = "5f0c6b8e-3c1d-4a59-9a52-0d2f1d6c7e11"
_INBOX_ID = "9b1e2d55-7a0c-4c8e-b7f5-2f6a3e1d4c90"

MESSAGE_VALUE = {
    "id": _MESSAGE_ID,
    "customer_message_id": "order-1234-shipped",
    "provider_message_id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
    "inbox": _INBOX_ID,
    "channel": "WHATSAPP",
    "channel_type": "whatsapp_cloud",
    "conversation": 42,
    "direction": "outgoing",
    "to": "+16505076520",
    "content": "Your order has shipped.",
    "status": "DELIVERED",
    "tick": "double",
    "is_terminal": False,
    "error": None,
    "attempt": 1,
    "queued_at": "2026-01-05T10:00:00Z",
    "sent_at": "2026-01-05T10:00:01Z",
    "delivered_at": "2026-01-05T10:00:03Z",
    "read_at": None,
    "failed_at": None,
    "status_updated_at": "2026-01-05T10:00:04Z",
    "created_at": "2026-01-05T10:00:00Z",
}

FAILED_VALUE = {
    **MESSAGE_VALUE,
    "status": "FAILED",
    "tick": "failed",
    "is_terminal": True,
    "delivered_at": None,
    "failed_at": "2026-01-05T10:00:02Z",
    "error": {
        "code": "131047",
        "title": "Re-engagement message",
        "detail": "More than 24 hours have passed since the recipient last replied.",
        "hint": "Send an approved template message to re-open the conversation.",
    },
}

MESSAGE = [
    OpenApiExample("Delivered", value=MESSAGE_VALUE, response_only=True),
    OpenApiExample("Failed", value=FAILED_VALUE, response_only=True),
]

MESSAGE_CREATE = [
    OpenApiExample(
        "Free text",
        value={
            "inbox": _INBOX_ID,
            "to": "+16505076520",
            "content": "Your order has shipped.",
            "customer_message_id": "order-1234-shipped",
        },
        request_only=True,
    ),
    OpenApiExample(
        "WhatsApp template",
        value={
            "inbox": _INBOX_ID,
            "to": "+16505076520",
            "template": {"name": "order_shipped", "language": {"code": "en_US"}},
        },
        request_only=True,
    ),
    OpenApiExample(
        "WhatsApp template with parameters",
        description="The `parameters` shorthand becomes the Cloud API's `components`; a "
        "synced template checks the counts first (DESIGN §13).",
        value={
            "inbox": _INBOX_ID,
            "to": "+16505076520",
            "template": {
                "name": "order_update",
                "language": "en_US",
                "parameters": {"header": ["A-1001"], "body": ["Ana", "A-1001"]},
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "Queued",
        value={
            **MESSAGE_VALUE,
            "status": "QUEUED",
            "tick": "pending",
            "provider_message_id": None,
            "sent_at": None,
            "delivered_at": None,
            "status_updated_at": "2026-01-05T10:00:00Z",
        },
        response_only=True,
        status_codes=["202"],
    ),
    OpenApiExample(
        "Outside the service window",
        value={
            "error": {
                "code": "outside_customer_service_window",
                "message": "The contact has not written in the last 24 hours, so this channel "
                "only allows an approved template. Send a template instead of free text.",
            }
        },
        response_only=True,
        status_codes=["422"],
    ),
    OpenApiExample(
        "Template not approved",
        value={
            "error": {
                "code": "template_not_approved",
                "message": "Template spring_sale (en_US) is PAUSED: only APPROVED templates "
                "can be sent.",
            }
        },
        response_only=True,
        status_codes=["422"],
    ),
    OpenApiExample(
        "Template parameters mismatch",
        value={
            "error": {
                "code": "template_parameters_mismatch",
                "message": "Template order_update (en_US) takes 1 header and 2 body "
                "parameters; 0 and 2 were given.",
            }
        },
        response_only=True,
        status_codes=["422"],
    ),
]

EVENTS = [
    OpenApiExample(
        "History",
        value=[
            {
                "id": 1,
                "status": "SENT",
                "raw_status": "send:accepted",
                "occurred_at": "2026-01-05T10:00:01Z",
                "received_at": "2026-01-05T10:00:01Z",
                "source": "send",
                "outcome": "applied",
                "attempt": 1,
                "error": None,
                "duplicate_count": 0,
            },
            {
                "id": 2,
                "status": "DELIVERED",
                "raw_status": "delivered",
                "occurred_at": "2026-01-05T10:00:03Z",
                "received_at": "2026-01-05T10:00:04Z",
                "source": "webhook",
                "outcome": "applied",
                "attempt": 1,
                "error": None,
                "duplicate_count": 1,
            },
        ],
        response_only=True,
    )
]

STATUS_REPORT = [
    OpenApiExample("Delivered", value={"status": "DELIVERED"}, request_only=True),
    OpenApiExample(
        "Failed",
        value={
            "status": "FAILED",
            "occurred_at": "2026-01-05T10:00:02Z",
            "error": {"code": "user_blocked", "title": "Blocked", "detail": "User blocked us."},
        },
        request_only=True,
    ),
]

INBOX_CREATE = [
    OpenApiExample(
        "WhatsApp Cloud API",
        value={
            "name": "Support WhatsApp",
            "channel_type": "whatsapp_cloud",
            "config": {
                "phone_number_id": "106540352242922",
                "access_token": "EAAG…",
                "app_secret": "…",
                "verify_token": "choose-a-token",
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "Created",
        value={
            "id": _INBOX_ID,
            "name": "Support WhatsApp",
            "channel_type": "whatsapp_cloud",
            "channel": "WHATSAPP",
            "config": {"phone_number_id": "106540352242922"},
            "secrets_set": ["access_token", "app_secret", "verify_token"],
            "webhook_url": f"https://tickmark.example.com/webhooks/whatsapp_cloud/{_INBOX_ID}/",
            "capabilities": {"sent": True, "delivered": True, "read": True, "failed": True},
            "created_at": "2026-01-05T09:00:00Z",
        },
        response_only=True,
        status_codes=["201"],
    ),
    OpenApiExample(
        "Missing config key",
        value={
            "error": {
                "code": "validation_error",
                "message": "config.access_token: Required for whatsapp_cloud inboxes.",
                "field": "config.access_token",
                "details": {"config.access_token": ["Required for whatsapp_cloud inboxes."]},
            }
        },
        response_only=True,
        status_codes=["400"],
    ),
]

INBOX_UPDATE = [
    OpenApiExample(
        "Rotate a token",
        value={"config": {"access_token": "EAAG-new…"}},
        request_only=True,
    )
]

WEBHOOK_CREATE = [
    OpenApiExample(
        "Subscribe",
        value={
            "url": "https://example.com/tickmark-events",
            "events": ["message.created", "message.status_changed"],
        },
        request_only=True,
    ),
    OpenApiExample(
        "Created",
        value={
            "id": 7,
            "url": "https://example.com/tickmark-events",
            "events": ["message.created", "message.status_changed"],
            "is_active": True,
            "disabled_reason": "",
            "failing_since": None,
            "created_at": "2026-01-05T09:00:00Z",
            "secret": "whsec_…",
        },
        response_only=True,
        status_codes=["201"],
    ),
]
