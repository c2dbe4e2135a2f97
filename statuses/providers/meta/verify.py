"""Meta's webhook authentication: ``X-Hub-Signature-256`` and the ``hub.challenge`` handshake."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from statuses.providers.base import HandshakeReply, WebhookRequest, tokens_equal

SIGNATURE_HEADER = "x-hub-signature-256"


def signature_valid(request: WebhookRequest, secret: object) -> bool:
    """Check ``X-Hub-Signature-256`` (hex HMAC-SHA256 of the raw body) in constant time."""
    header = request.headers.get(SIGNATURE_HEADER, "")
    if not isinstance(secret, str) or not secret or not header:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    # Meta sends lowercase hex; accepting uppercase hex costs nothing and forges nothing.
    given = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(given, expected.encode())


def verify_app_secret(request: WebhookRequest, config: dict[str, Any]) -> bool:
    """Check Meta's signature of the raw body with the app secret (a provider ``verify``)."""
    return signature_valid(request, config.get("app_secret"))


def handshake_verify_token(
    request: WebhookRequest, config: dict[str, Any]
) -> HandshakeReply | None:
    """Answer the subscription check Meta sends when the callback URL is saved, with the
    inbox's ``verify_token`` (a provider ``handshake``)."""
    return hub_handshake(request, config.get("verify_token"))


def hub_handshake(request: WebhookRequest, verify_token: object) -> HandshakeReply | None:
    """Answer Meta's ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``."""
    if request.method.upper() != "GET" or "hub.mode" not in request.query:
        return None
    if request.query.get("hub.mode") != "subscribe" or not tokens_equal(
        request.query.get("hub.verify_token", ""), verify_token
    ):
        return HandshakeReply(403)
    challenge = request.query.get("hub.challenge", "")
    if not challenge:
        return HandshakeReply(400)
    return HandshakeReply(200, challenge.encode())
