"""Tickmark's own webhook signature (DESIGN §8), shared by every webhook we send.

Header value: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``. The
timestamp is signed with the body so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Tickmark-Signature"
DEFAULT_TOLERANCE = 300  # seconds either side of now


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the signature header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Tell whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds.

    Several ``v1`` entries are allowed (a sender rotating its secret signs with both).
    Never raises.
    """
    if not secret or not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp).encode()
    # Compare every candidate (no early exit on the first match).
    matches = [hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in candidates]
    return any(matches)


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
