"""Telegram Bot API (reference §7).

Telegram reports nothing about a bot's messages after ``sendMessage`` accepts them: no delivery
and no read receipts, so ``sent`` is as far as a Telegram message ever gets. Webhook updates
only bring the contact's own messages.

Error codes: Telegram's ``error_code`` is just the HTTP status; the precise reason is in
``description``. We keep the number and add a slug for the reasons people need to tell apart
(``403:bot_blocked``, ``400:chat_not_found`` …), so the catalogue can explain each one.

The bot token is part of the request URL: it must never reach a log, an exception text or a
stored error, so nothing here formats the URL into a message.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from statuses.machine import Status
from statuses.providers import _http
from statuses.providers.base import (
    BASE_URL_KEY,
    ConfigSchema,
    ConsentChange,
    ErrorInfo,
    HandshakeReply,
    InboundMessage,
    MalformedPayload,
    OutgoingMessage,
    ParseResult,
    ProviderSpec,
    SendOutcome,
    SendResult,
    SkipKind,
    WebhookRequest,
    channel,
    tokens_equal,
)

DEFAULT_API_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "x-telegram-bot-api-secret-token"

ERRORS: dict[str, ErrorInfo] = {
    "400": ErrorInfo(
        "Bad request",
        "Telegram refused the request as invalid.",
        "Read the detail: it names the field Telegram did not accept.",
    ),
    "400:chat_not_found": ErrorInfo(
        "Chat not found",
        "Telegram does not know this chat id, or the bot has never talked with this person.",
        "Check the chat id; a person must start a conversation with the bot first.",
    ),
    "400:message_text_empty": ErrorInfo(
        "Message text is empty",
        "Telegram does not send empty text messages.",
        "Write some text before sending.",
    ),
    "400:message_too_long": ErrorInfo(
        "Message is too long",
        "Telegram text messages are limited to 4096 characters.",
        "Shorten the message or split it into several.",
    ),
    "401": ErrorInfo(
        "Bot token rejected",
        "Telegram does not accept the bot token configured for this inbox.",
        "Copy the current token from @BotFather into the inbox settings.",
    ),
    "403": ErrorInfo(
        "Not allowed to message this chat",
        "Telegram forbids the bot from writing to this chat.",
        "Read the detail for the reason.",
    ),
    "403:bot_blocked": ErrorInfo(
        "The contact blocked the bot",
        "The person blocked this bot, so Telegram refuses every message to them.",
        "Nothing to do until they unblock the bot; reach them on another channel.",
    ),
    "403:user_deactivated": ErrorInfo(
        "Telegram account deleted",
        "The person's Telegram account no longer exists.",
        "Remove this address from the contact.",
    ),
    "403:cant_initiate": ErrorInfo(
        "The contact has not started the bot",
        "Bots cannot start conversations: the person must message the bot first.",
        "Ask the contact to open the bot and press Start.",
    ),
    "403:kicked": ErrorInfo(
        "The bot was removed from the group",
        "The bot is no longer a member of this group or channel.",
        "Add the bot to the group again.",
    ),
    "404": ErrorInfo(
        "Bot API method not found",
        "Telegram answered 404, which usually means the bot token in the URL is wrong.",
        "Check the bot token in the inbox settings.",
    ),
    "409": ErrorInfo(
        "Conflicting bot configuration",
        "Telegram reports a conflict, e.g. a webhook and long polling used at the same time.",
        "Make sure only Tickmark receives this bot's updates.",
    ),
    "429": ErrorInfo(
        "Too many messages",
        "Telegram is rate-limiting the bot (about 1 message per second per chat, 30 overall).",
        "Tickmark retries automatically after the delay Telegram asks for.",
        permanent=False,
    ),
    "500": ErrorInfo(
        "Telegram server error",
        "Telegram had an internal problem.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    **_http.transport_errors(
        "Telegram",
        connect_hint="Tickmark retries automatically; check the server's network if it persists.",
        lost_answer_hint="Check the chat before resending, to avoid a duplicate.",
    ),
}
# The exception text can contain the URL, and the URL contains the bot token: keep only the
# exception's name.
_TRANSPORT = _http.TransportPolicy(catalogue=ERRORS, detail=_http.exception_name)

# description fragment (lowercase) → catalogue code
_DESCRIPTION_CODES: tuple[tuple[str, str], ...] = (
    ("bot was blocked by the user", "403:bot_blocked"),
    ("user is deactivated", "403:user_deactivated"),
    ("bot can't initiate conversation", "403:cant_initiate"),
    ("bot was kicked", "403:kicked"),
    ("chat not found", "400:chat_not_found"),
    ("message text is empty", "400:message_text_empty"),
    ("message is too long", "400:message_too_long"),
)


def verify(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Compare the secret-token header with the inbox's ``secret_token`` (constant time)."""
    return tokens_equal(request.headers.get(SECRET_HEADER), config.get("secret_token"))


def handshake(request: WebhookRequest, config: dict[str, Any]) -> HandshakeReply | None:
    """Telegram has no subscription handshake (``setWebhook`` is a call we make)."""
    return None


def parse(request: WebhookRequest, config: dict[str, Any]) -> ParseResult:
    """Turn an Update into inbound messages.

    Duplicated updates (same ``update_id``) carry the same message, so the inbound message's
    ``provider_message_id`` (``<chat id>:<message id>``) is the dedupe key.
    """
    update = _load_json(request.body)
    result = ParseResult()
    # A channel post or a business message has the same shape as a message.
    for key in _MESSAGE_KEYS:
        message = update.get(key)
        if message is None:
            continue
        with result.entry(message, key) as part:
            inbound = _inbound(message, request.received_at)
            if _CHAT_ID.fullmatch(inbound.contact_address.replace("\x00", "")):
                part.inbound.append(inbound)
            else:
                part.skip(
                    SkipKind.INVALID_SENDER,
                    f"{key}.chat.id {inbound.contact_address!r} is not a Telegram chat id",
                    message,
                )
    for key in update:
        if key in _MESSAGE_KEYS or key == "update_id":
            continue
        if key == "my_chat_member":
            with result.entry(update[key], key) as part:
                _chat_member(update, request.received_at, part)
            continue
        result.skip(SkipKind.IGNORED, f"{key} update: nothing to apply", update[key])
    return result


# The bot's new status in the chat that means the contact blocked it, or started it again.
_CONSENT_STATUSES = {"kicked": True, "member": False}


def _chat_member(update: dict[str, Any], received_at: datetime, result: ParseResult) -> None:
    """``my_chat_member``: the bot's own membership changed. In a private chat ``kicked`` is
    the user blocking the bot and ``member`` restarting it (DESIGN §14); a retried update has
    the same ``update_id``, so it records one change."""
    change = update["my_chat_member"]
    if not isinstance(change, dict):
        raise MalformedPayload("my_chat_member is not an object")
    chat = change.get("chat")
    new = change.get("new_chat_member")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    status = new.get("status") if isinstance(new, dict) else None
    if isinstance(chat_id, bool) or not isinstance(chat_id, int) or not isinstance(status, str):
        raise MalformedPayload("my_chat_member without chat.id or new_chat_member.status")
    if status not in _CONSENT_STATUSES:
        result.skip(SkipKind.IGNORED, f"my_chat_member {status}: nothing to apply", change)
        return
    result.consents.append(
        ConsentChange(
            contact_address=str(chat_id),
            opted_out=_CONSENT_STATUSES[status],
            source="provider_event",
            detail=f"my_chat_member {status}",
            occurred_at=_from_unix(change.get("date"), received_at),
            dedupe_key=f"telegram:{update.get('update_id')}:{status}",
        )
    )


_MESSAGE_KEYS = ("message", "channel_post", "business_message")
# Chat ids are integers (negative for groups and channels).
_CHAT_ID = re.compile(r"-?[0-9]{1,20}")


def send(client: httpx.Client, config: dict[str, Any], message: OutgoingMessage) -> SendResult:
    """Send a text message with ``sendMessage``; success means ``sent``, nothing more."""
    base = _http.base_url(config, DEFAULT_API_BASE_URL)
    url = f"{base}/bot{config.get('bot_token', '')}/sendMessage"
    payload = {"chat_id": message.to, "text": message.content}
    outcome = _http.exchange(client, "POST", url, policy=_TRANSPORT, json=payload)
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response, keep_other=False)
    result = body.get("result") if isinstance(body.get("result"), dict) else None
    if response.is_success and body.get("ok") is True and result and "message_id" in result:
        chat = result.get("chat") if isinstance(result.get("chat"), dict) else {}
        chat_id = chat.get("id", message.to)
        return SendResult(
            SendOutcome.ACCEPTED,
            provider_message_id=f"{chat_id}:{result['message_id']}",
            status=Status.SENT,
            raw=body,
        )

    if response.is_success:  # 2xx without a message: we cannot tell whether it went out
        return SendResult(
            SendOutcome.UNKNOWN,
            error_code="no_response",
            error_title=ERRORS["no_response"].title,
            error_detail=f"HTTP {response.status_code} without a message id",
            raw=body,
        )
    status_code = body.get("error_code") if isinstance(body.get("error_code"), int) else None
    status_code = status_code or response.status_code
    description = str(body.get("description") or response.reason_phrase or "")
    # Busy is judged on Telegram's error_code as much as on the HTTP status.
    if status_code == 429 or response.status_code == 429 or status_code >= 500:
        code = "429" if status_code == 429 else "500"
        return _http.refused(
            response,
            body,
            code,
            ERRORS[code].title,
            description,
            transient=True,
            wait=_retry_after_parameter(body),
        )
    code = _error_code(status_code, description)
    info = ERRORS.get(code)
    title = info.title if info else f"Telegram error {status_code}"
    return _http.refused(response, body, code, title, description, transient=False)


def _error_code(status_code: int, description: str) -> str:
    lowered = description.lower()
    for fragment, code in _DESCRIPTION_CODES:
        if fragment in lowered:
            return code
    return str(status_code)


def _inbound(message: Any, received_at: datetime) -> InboundMessage:
    if not isinstance(message, dict):
        raise MalformedPayload("message is not an object")
    chat = message.get("chat")
    if not isinstance(chat, dict) or "id" not in chat or "message_id" not in message:
        raise MalformedPayload("message without chat.id or message_id")
    if isinstance(chat["id"], bool) or not isinstance(chat["id"], int | str):
        raise MalformedPayload("chat.id is not an integer")
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    name = " ".join(
        str(part) for part in (sender.get("first_name"), sender.get("last_name")) if part
    ) or str(sender.get("username") or chat.get("title") or "")
    content = message.get("text") or message.get("caption") or _placeholder(message)
    return InboundMessage(
        contact_address=str(chat["id"]),
        provider_message_id=f"{chat['id']}:{message['message_id']}",
        content=str(content),
        occurred_at=_from_unix(message.get("date"), received_at),
        contact_name=name,
    )


def _placeholder(message: dict[str, Any]) -> str:
    for kind in ("photo", "video", "voice", "audio", "document", "sticker", "location", "contact"):
        if kind in message:
            return f"[{kind}]"
    return ""


def _from_unix(value: Any, default: datetime) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise MalformedPayload("date out of range") from exc
    return default


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("an Update must be a JSON object")
    return data


def _retry_after_parameter(body: dict[str, Any]) -> float | None:
    """Telegram's own delay, ``parameters.retry_after`` (seconds); it wins over the header."""
    parameters = body.get("parameters")
    if isinstance(parameters, dict):
        value = parameters.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None


SPEC = ProviderSpec(
    name="telegram",
    channels=(channel("telegram", "TELEGRAM", "YNNY", "send response only"),),
    config=ConfigSchema(
        required=("bot_token", "secret_token"),
        optional=(BASE_URL_KEY,),
        secret=frozenset({"bot_token", "secret_token"}),
    ),
    # The secret-token header is a credential, not a signature: never kept.
    kept_headers=frozenset(),
    idempotent_send=False,
    webhook_retry_window=timedelta(days=3),
    verify=verify,
    handshake=handshake,
    parse=parse,
    send=send,
    reconcile=None,
    errors=ERRORS,
)
