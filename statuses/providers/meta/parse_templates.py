"""WhatsApp template webhooks (DESIGN §13): three ``changes[].field`` values that arrive in the
same body as message statuses, about templates instead of messages.

- ``message_template_status_update``: ``event`` is the new status (``reason`` why, for a
  rejection or a pause); ``REINSTATED`` means approved again.
- ``message_template_quality_update``: ``new_quality_score``.
- ``template_category_update``: ``new_category`` (Meta re-categorised the template).

Each names the template by ``message_template_id`` (and name and language, so a template we
have not synced yet can be created from the webhook). ``entry[].id`` is the WABA id. An event
that is no status we keep (``FLAGGED``, ``LOCKED``…) is recorded on the delivery as ignored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from statuses.providers.base import MalformedPayload, ParseResult, SkipKind, TemplateUpdate
from statuses.providers.meta.wire import as_object

STATUS_UPDATE = "message_template_status_update"
QUALITY_UPDATE = "message_template_quality_update"
CATEGORY_UPDATE = "template_category_update"
FIELDS = frozenset({STATUS_UPDATE, QUALITY_UPDATE, CATEGORY_UPDATE})

STATUSES = frozenset(
    {
        "APPROVED",
        "PENDING",
        "REJECTED",
        "PAUSED",
        "DISABLED",
        "IN_APPEAL",
        "PENDING_DELETION",
        "DELETED",
        "ARCHIVED",
        "LIMIT_EXCEEDED",
    }
)
# Events that name a status by another word.
EVENT_STATUS = {"REINSTATED": "APPROVED"}
QUALITIES = frozenset({"GREEN", "YELLOW", "RED", "UNKNOWN"})
CATEGORIES = frozenset({"MARKETING", "UTILITY", "AUTHENTICATION"})


def _text(value: Any, limit: int) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | str):
        return str(value).strip()[:limit]
    return ""


def _enum(value: Any, allowed: frozenset[str]) -> str:
    text = _text(value, 40).upper()
    return text if text in allowed else ""


def parse_template_change(
    field: str, change: dict[str, Any], waba_id: str, part: ParseResult
) -> None:
    """Add the ``TemplateUpdate`` of one template change to ``part`` (or record why not)."""
    value = as_object(change.get("value"), "value")
    template_id = _text(value.get("message_template_id"), 100)
    name = _text(value.get("message_template_name"), 512)
    if not template_id and not name:
        raise MalformedPayload(f"{field} without message_template_id or name")
    update = TemplateUpdate(
        field=field,
        waba_id=waba_id,
        provider_template_id=template_id,
        name=name,
        language=_text(value.get("message_template_language"), 15),
        # The category an approval names, also taken when we first hear of the template.
        category=_enum(value.get("message_template_category"), CATEGORIES),
    )
    if field == STATUS_UPDATE:
        event = _text(value.get("event"), 40).upper()
        status = EVENT_STATUS.get(event, event)
        if status not in STATUSES:
            part.skip(SkipKind.IGNORED, f"template event {event!r}: not a template status", value)
            return
        reason = _text(value.get("reason"), 200)
        update = replace(update, status=status, reason="" if reason.upper() == "NONE" else reason)
    elif field == QUALITY_UPDATE:
        quality = _enum(value.get("new_quality_score"), QUALITIES)
        if not quality:
            raise MalformedPayload("message_template_quality_update without a known score")
        update = replace(update, quality_score=quality)
    else:
        category = _enum(value.get("new_category"), CATEGORIES)
        if not category:
            raise MalformedPayload("template_category_update without a known new_category")
        update = replace(update, category=category)
    part.templates.append(update)
