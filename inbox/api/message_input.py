"""The body of ``POST /api/v1/messages`` in its common shape, checked without DRF's machinery.

``MessageCreateSerializer`` is the contract (the OpenAPI schema and every error message come from
it), but building and running a DRF serializer costs more than the rest of the request's Python
(bench/README.md). This module accepts only bodies that the serializer certainly accepts, and
returns exactly what it would: a free-text message to a phone number or another non-email
address, with plain well-formed fields. Anything else (a template, an email address, a wrong
type, a value out of bounds, a missing inbox) returns ``None`` and the serializer decides — and
words the error. So the fast path can never accept more than the contract, nor answer differently.
"""

from __future__ import annotations

import uuid
from typing import Any

from inbox import caches
from inbox.addresses import address_problem
from inbox.api.serializers import MessageCreateSerializer
from inbox.models import Account
from statuses.catalogue import Family

_FIELDS = MessageCreateSerializer._declared_fields
TO_MAX = _FIELDS["to"].max_length
CONTENT_MAX = _FIELDS["content"].max_length
CUSTOMER_ID_MAX = _FIELDS["customer_message_id"].max_length


def _text(value: Any, max_length: int) -> str | None:
    """What the serializer's ``CharField`` makes of a plain string (trimmed, not blank), or None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > max_length or "\x00" in value:
        return None
    try:
        value.encode("utf-8")  # a lone surrogate is refused by the serializer
    except UnicodeEncodeError:
        return None
    return value


def message_create_input(data: Any, account: Account) -> dict[str, Any] | None:
    """The validated data ``MessageCreateSerializer`` would give for ``data``, or None if the
    body is not of the common shape (then let the serializer check it)."""
    if not isinstance(data, dict) or "template" in data:
        return None
    try:
        inbox_id = uuid.UUID(data["inbox"]) if isinstance(data.get("inbox"), str) else None
    except ValueError:
        return None
    to = _text(data.get("to"), TO_MAX)
    content = _text(data.get("content"), CONTENT_MAX)
    if inbox_id is None or to is None or content is None:
        return None
    inbox = caches.inbox_get(account=account, inbox_id=inbox_id)
    if inbox is None or inbox.family == Family.EMAIL:
        return None
    if address_problem(inbox.family, to):  # the serializer's rule (inbox.addresses)
        return None
    validated = {"inbox": inbox, "to": to, "content": content}
    if "customer_message_id" in data:
        customer_message_id = _text(data["customer_message_id"], CUSTOMER_ID_MAX)
        if customer_message_id is None:
            return None
        validated["customer_message_id"] = customer_message_id
    return validated
