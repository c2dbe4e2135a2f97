"""One recipient's message from the campaign's content or template and their parameters.

Content placeholders are ``{{1}}``, ``{{2}}``… (a list of parameters) or ``{{name}}`` (an object),
as in WhatsApp templates. A template gets the parameters as its body component (WhatsApp Cloud
API ``components``: positional, or named with ``parameter_name``).
"""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
Parameters = list[str] | dict[str, str] | None


def content_for(content: str, parameters: Parameters) -> str:
    """``content`` with each placeholder replaced (an unknown one is left as it is)."""
    if not parameters or not content:
        return content
    values = (
        {str(i): v for i, v in enumerate(parameters, start=1)}
        if isinstance(parameters, list)
        else parameters
    )
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), content)


def template_for(template: dict[str, Any] | None, parameters: Parameters) -> dict[str, Any] | None:
    """``template`` with ``parameters`` as its body component's parameters."""
    if template is None or not parameters:
        return template
    if isinstance(parameters, list):
        values = [{"type": "text", "text": v} for v in parameters]
    else:
        values = [{"type": "text", "parameter_name": k, "text": v} for k, v in parameters.items()]
    others = [c for c in template.get("components") or [] if c.get("type") != "body"]
    return {**template, "components": [*others, {"type": "body", "parameters": values}]}
