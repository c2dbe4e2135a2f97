"""Our own correlation id, sent wherever the provider echoes it back (DESIGN §5).

It names the message *and* the attempt, so a status for an old attempt is recognised as such.
"""

from __future__ import annotations

import uuid

PREFIX = "tm1"


def make(message_id: uuid.UUID | str, attempt: int) -> str:
    return f"{PREFIX}.{uuid.UUID(str(message_id)).hex}.{attempt}"


def parse(value: str | None) -> tuple[uuid.UUID, int] | None:
    """Return (message id, attempt), or None for anything that is not one of ours."""
    if not value:
        return None
    parts = value.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        message_id = uuid.UUID(hex=parts[1])
        attempt = int(parts[2])
    except ValueError:
        return None
    if attempt < 1:
        return None
    return message_id, attempt
