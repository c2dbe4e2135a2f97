"""Sending through a Graph-style API: a JSON POST over the shared HTTP plumbing (``_http``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from statuses.providers import _http
from statuses.providers.base import (
    ErrorInfo,
    OutgoingMessage,
    ReadMark,
    SendOutcome,
    SendResult,
)
from statuses.providers.meta.errors import graph_error

DEFAULT_API_VERSION = "v21.0"


def whatsapp_message_body(message: OutgoingMessage) -> dict[str, Any]:
    """Build the Cloud API ``/messages`` JSON for a text or template message."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        # WhatsApp addresses are the E.164 digits; DESIGN keeps the '+' in our addresses.
        "to": "".join(ch for ch in message.to if ch.isdigit()),
    }
    if message.template:
        template = dict(message.template)
        if isinstance(template.get("language"), str):
            template["language"] = {"code": template["language"]}
        body["type"] = "template"
        body["template"] = template
    else:
        body["type"] = "text"
        body["text"] = {"body": message.content}
    if message.correlation_id:
        # Echoed on every status, so statuses still find the message if the send answer is lost.
        body["biz_opaque_callback_data"] = message.correlation_id
    return body


def whatsapp_message_id(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        message_id = messages[0].get("id")
        return message_id if isinstance(message_id, str) else ""
    return ""


def messaging_message_body(message: OutgoingMessage) -> dict[str, Any]:
    """Build the Send API JSON for Messenger/Instagram.

    Free text is a ``RESPONSE`` inside the 24-hour window. A template is a tagged message
    sent outside it: ``template["tag"]`` (default ``HUMAN_AGENT``, the 7-day human support tag)
    with ``template["text"]`` (or the message content), or a structured Messenger template
    when ``template["payload"]`` is given.
    """
    body: dict[str, Any] = {"recipient": {"id": message.to}}
    if message.template:
        template = message.template
        body["messaging_type"] = "MESSAGE_TAG"
        body["tag"] = template.get("tag") or "HUMAN_AGENT"
        if isinstance(template.get("payload"), dict):
            body["message"] = {"attachment": {"type": "template", "payload": template["payload"]}}
        else:
            body["message"] = {"text": template.get("text") or message.content}
    else:
        body["messaging_type"] = "RESPONSE"
        body["message"] = {"text": message.content}
    return body


def whatsapp_read_body(mark: ReadMark) -> dict[str, Any]:
    """Build the Cloud API "mark as read" JSON: the newest message read, which marks every
    earlier one of the conversation read too."""
    return {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": mark.provider_message_id,
    }


def messaging_seen_body(mark: ReadMark) -> dict[str, Any]:
    """Build the Send API sender action that marks the person's thread seen (Messenger,
    Instagram): it names no message, the whole thread is marked."""
    return {"recipient": {"id": mark.contact_address}, "sender_action": "mark_seen"}


def messaging_message_id(body: Any) -> str:
    message_id = body.get("message_id") if isinstance(body, dict) else None
    return message_id if isinstance(message_id, str) else ""


def send_json(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    *,
    catalogue: dict[str, ErrorInfo],
    message_id_of: Callable[[Any], str] | None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    with_subcode: bool = False,
) -> SendResult:
    """POST a JSON message to a Meta-style API and map the answer to a ``SendResult``.

    ``message_id_of`` reads the new message's id from a 2xx answer; None for a call that
    creates no message (a read receipt), where any 2xx is ACCEPTED.
    """
    outcome = _http.exchange(client, "POST", url, json=payload, headers=headers, params=params)
    if isinstance(outcome, SendResult):
        return outcome
    response = outcome
    body = _http.response_json(response)
    if response.is_success:
        if message_id_of is None:
            return SendResult(SendOutcome.ACCEPTED, raw=body)
        return _http.accepted(response, body, message_id_of(body))
    code, title, detail, transient = graph_error(body, catalogue, with_subcode=with_subcode)
    return _http.refused(
        response,
        body,
        code or f"http_{response.status_code}",
        title,
        detail,
        transient=transient or _http.is_busy(response),
    )


@dataclass(frozen=True)
class GraphApi:
    """One Meta product's calls: how a message and a read mark are written, and its errors."""

    message_body: Callable[[OutgoingMessage], dict[str, Any]]
    message_id_of: Callable[[Any], str]
    read_body: Callable[[ReadMark], dict[str, Any]]
    # WhatsApp marks one message read by its id; Messenger marks the whole thread seen.
    read_needs_message_id: bool
    # Messenger and Instagram errors are told apart by their subcode.
    with_subcode: bool


# The Cloud API, directly or through 360dialog.
WHATSAPP = GraphApi(
    whatsapp_message_body,
    whatsapp_message_id,
    whatsapp_read_body,
    read_needs_message_id=True,
    with_subcode=False,
)
# The Messenger platform's Send API (Messenger, Instagram).
MESSAGING = GraphApi(
    messaging_message_body,
    messaging_message_id,
    messaging_seen_body,
    read_needs_message_id=False,
    with_subcode=True,
)


def send(
    api: GraphApi,
    client: httpx.Client,
    url: str,
    message: OutgoingMessage,
    *,
    catalogue: dict[str, ErrorInfo],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> SendResult:
    """Send a message through ``api`` (a text or template; a tagged message on Messenger)."""
    return send_json(
        client,
        url,
        api.message_body(message),
        catalogue=catalogue,
        message_id_of=api.message_id_of,
        headers=headers,
        params=params,
        with_subcode=api.with_subcode,
    )


def mark_read(
    api: GraphApi,
    client: httpx.Client,
    url: str,
    mark: ReadMark,
    *,
    catalogue: dict[str, ErrorInfo],
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> SendResult:
    """Mark the conversation read up to ``mark`` (WhatsApp) or the thread seen (Messenger)."""
    if api.read_needs_message_id and not mark.provider_message_id:
        return SendResult(
            SendOutcome.REJECTED,
            error_code="no_message_id",
            error_detail="the message read has no WhatsApp id",
        )
    return send_json(
        client,
        url,
        api.read_body(mark),
        catalogue=catalogue,
        message_id_of=None,
        headers=headers,
        params=params,
        with_subcode=api.with_subcode,
    )
