"""Meta's template ``components`` JSON: placeholders, the send-time ``parameters`` shorthand.

Pure functions (no ORM, no HTTP), shared by sync (counting placeholders), sending (checking and
expanding parameters) and the agent page (preview).

A template's text holds positional placeholders (``{{1}}``, ``{{2}}``…) or, with
``parameter_format: NAMED``, named ones (``{{first_name}}``). A media header (IMAGE, VIDEO,
DOCUMENT) has no text but takes one parameter: the media's link.

Sending: the shorthand ``{"header": [...], "body": [...]}`` (lists of values; a dict
``{name: value}`` for named placeholders) becomes the Cloud API's ``components``::

    [{"type": "header", "parameters": [{"type": "text", "text": "…"}]},
     {"type": "body", "parameters": [{"type": "text", "text": "…"}, …]}]

with ``"parameter_name"`` on each parameter of a named template, and
``{"type": "image", "image": {"link": "…"}}`` for a media header.
"""

from __future__ import annotations

import re
from typing import Any

# ``{{1}}`` or ``{{first_name}}`` (Meta: lowercase letters, digits and underscores).
PLACEHOLDER = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})
# Meta's limit on a text parameter.
MAX_PARAMETER_LENGTH = 1024


def component(components: Any, kind: str) -> dict[str, Any] | None:
    """The first component of ``kind`` (HEADER, BODY, …; any case), or None."""
    if not isinstance(components, list):
        return None
    for item in components:
        if isinstance(item, dict) and str(item.get("type", "")).upper() == kind:
            return item
    return None


def placeholders(text: Any) -> list[str]:
    """The distinct placeholder names of ``text`` in order of first use."""
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def header_placeholders(components: Any) -> list[str]:
    header = component(components, "HEADER")
    if header is None:
        return []
    if str(header.get("format", "TEXT")).upper() in MEDIA_FORMATS:
        return ["link"]
    return placeholders(header.get("text"))


def body_placeholders(components: Any) -> list[str]:
    body = component(components, "BODY")
    return placeholders(body.get("text")) if body is not None else []


def counts(components: Any) -> tuple[int, int]:
    """(header, body) placeholder counts of a template's components."""
    return len(header_placeholders(components)), len(body_placeholders(components))


def header_format(components: Any) -> str:
    header = component(components, "HEADER")
    return str(header.get("format", "TEXT")).upper() if header is not None else ""


class ParameterError(ValueError):
    """The given parameters do not fit the template (the message says how)."""


def _values(part: str, given: Any) -> list[tuple[str | None, str]]:
    """``[(name or None, value)]`` from a list (positional) or a dict (named)."""
    if given is None:
        return []
    if isinstance(given, dict):
        items = [(str(k), v) for k, v in given.items()]
    elif isinstance(given, list):
        items = [(None, v) for v in given]
    else:
        raise ParameterError(f"parameters.{part} must be a list of values (or an object).")
    values = []
    for name, value in items:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ParameterError(f"parameters.{part}: each value must be text.")
        text = str(value)
        if not text.strip():
            raise ParameterError(f"parameters.{part}: a value is empty.")
        if len(text) > MAX_PARAMETER_LENGTH:
            raise ParameterError(
                f"parameters.{part}: a value is longer than {MAX_PARAMETER_LENGTH} characters."
            )
        values.append((name, text))
    return values


def _named(values: list[tuple[str | None, str]], names: list[str]):
    """Positional values for a template with named placeholders take the names in order
    (the agent page posts a list); a count that differs is left for the count check."""
    named = bool(names) and not all(name.isdigit() for name in names)
    if not named or len(values) != len(names) or any(n is not None for n, _ in values):
        return values
    return [(name, value) for name, (_, value) in zip(names, values, strict=True)]


def _parameter(name: str | None, value: str, media: str = "") -> dict[str, Any]:
    if media:
        return {"type": media.lower(), media.lower(): {"link": value}}
    parameter: dict[str, Any] = {"type": "text"}
    if name is not None:
        parameter["parameter_name"] = name
    parameter["text"] = value
    return parameter


def expand(parameters: Any, components: Any = None) -> list[dict[str, Any]]:
    """Cloud API ``components`` from the ``{header?, body?}`` shorthand.

    ``components`` are the template's own (when known): a media header becomes a media
    parameter; otherwise every header value is text.
    """
    if not isinstance(parameters, dict):
        raise ParameterError("parameters must be an object {header?: [...], body?: [...]}.")
    unknown = set(parameters) - {"header", "body"}
    if unknown:
        raise ParameterError(f"parameters: unknown part {sorted(unknown)[0]!r}.")
    media = header_format(components)
    media = media if media in MEDIA_FORMATS else ""
    expanded = []
    header = _values("header", parameters.get("header"))
    if not media:
        header = _named(header, header_placeholders(components))
    if header:
        expanded.append(
            {"type": "header", "parameters": [_parameter(n, v, media) for n, v in header]}
        )
    body = _named(_values("body", parameters.get("body")), body_placeholders(components))
    if body:
        expanded.append({"type": "body", "parameters": [_parameter(n, v) for n, v in body]})
    return expanded


def given_counts(components: Any) -> tuple[int, int]:
    """(header, body) parameter counts of send-time Cloud API ``components``."""
    header = component(components, "HEADER")
    body = component(components, "BODY")

    def size(part: dict[str, Any] | None) -> int:
        parameters = part.get("parameters") if part is not None else None
        return len(parameters) if isinstance(parameters, list) else 0

    return size(header), size(body)


def preview(components: Any, header: list[str], body: list[str]) -> str:
    """The template's text with the given values filled in (the agent page's preview)."""
    parts = []
    for kind, values in (("HEADER", header), ("BODY", body)):
        part = component(components, kind)
        text = part.get("text") if part is not None else None
        if not isinstance(text, str):
            continue
        names = placeholders(text)
        parts.append(_fill(text, dict(zip(names, values, strict=False))))
    footer = component(components, "FOOTER")
    if footer is not None and isinstance(footer.get("text"), str):
        parts.append(footer["text"])
    return "\n\n".join(parts)


def _fill(text: str, filled: dict[str, str]) -> str:
    """``text`` with each placeholder replaced by its value (kept as is when none is given)."""
    return PLACEHOLDER.sub(lambda m: filled.get(m.group(1)) or m.group(0), text)
