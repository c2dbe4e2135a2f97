"""The agent page's WhatsApp template picker (DESIGN §13): each template of the inbox with its
category, its text and placeholders (for a field per placeholder and the live preview), and —
for one that cannot be sent — why."""

from __future__ import annotations

from typing import Any

from inbox.models import Inbox, Template
from inbox.template_selectors import templates_for_compose
from statuses.providers.meta import template_components as components_of
from statuses.templates import TEMPLATE_CHANNEL_TYPES

# Why a template cannot be picked, by status (the provider's reason is added when it gave one).
WHY_NOT = {
    Template.Status.PENDING: "Waiting for Meta's review.",
    Template.Status.REJECTED: "Rejected by Meta.",
    Template.Status.PAUSED: "Paused by Meta after poor feedback from recipients.",
    Template.Status.DISABLED: "Disabled by Meta.",
    Template.Status.IN_APPEAL: "Rejected; an appeal is pending.",
    Template.Status.ARCHIVED: "Archived.",
    Template.Status.LIMIT_EXCEEDED: "Over the account's template limit.",
}


def _text(components: Any, kind: str) -> str:
    part = components_of.component(components, kind)
    text = part.get("text") if part is not None else None
    return text if isinstance(text, str) else ""


def picker(inbox: Inbox) -> list[dict[str, Any]]:
    """The picker's choices, approved ones first (none on inboxes without templates)."""
    if inbox.channel_type not in TEMPLATE_CHANNEL_TYPES:
        return []
    choices = []
    for template in templates_for_compose(inbox_id=inbox.id):
        components = template.components
        selectable = template.status == Template.Status.APPROVED
        why = "" if selectable else WHY_NOT.get(template.status, template.status)
        if why and template.rejected_reason:
            why = f"{why} Reason: {template.rejected_reason}."
        choices.append(
            {
                "id": template.id,
                "name": template.name,
                "language": template.language,
                "category": template.category,
                "status": template.status,
                "selectable": selectable,
                "why": why,
                "header_format": components_of.header_format(components),
                "header": _text(components, "HEADER"),
                "body": _text(components, "BODY"),
                "footer": _text(components, "FOOTER"),
                "header_fields": components_of.header_placeholders(components),
                "body_fields": components_of.body_placeholders(components),
            }
        )
    return sorted(choices, key=lambda choice: not choice["selectable"])
