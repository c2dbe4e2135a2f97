"""Strict readers of Meta's JSON: strict about the shapes we rely on, silent about the rest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from statuses.providers.base import (
    MalformedPayload,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_json(body: bytes) -> Any:
    """Decode a JSON body or raise ``MalformedPayload``."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedPayload(f"body is not JSON: {exc}") from exc


def as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} is not an object")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """Return a list field; an absent field is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{where} is not an array")
    return value


def as_text(value: Any, where: str, *, required: bool = True) -> str:
    """Return an id-like field as text (Meta sends some ids as numbers)."""
    if isinstance(value, str) and (value or not required):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is None and not required:
        return ""
    raise MalformedPayload(f"{where} is missing or not a string")


def _to_millis(value: Any, unit_ms: int, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):
            try:
                return int(value.strip()) * unit_ms
            except ValueError:
                value = float(value)
        if isinstance(value, int):
            return value * unit_ms
        if isinstance(value, float):
            return round(value * unit_ms)
    except (TypeError, ValueError, OverflowError):
        pass
    raise MalformedPayload(f"{where} is not a timestamp")


def _from_millis(millis: int, where: str) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError as exc:
        raise MalformedPayload(f"{where} is out of range") from exc


def seconds_to_datetime(value: Any, where: str) -> datetime:
    """Parse a Unix time in seconds (WhatsApp sends a string) to an aware UTC datetime."""
    return _from_millis(_to_millis(value, 1000, where), where)


def millis(value: Any, where: str) -> int:
    """Return a millisecond timestamp (Messenger watermarks) as an int."""
    return _to_millis(value, 1, where)


def millis_to_datetime(value: Any, where: str) -> datetime:
    """Parse a Unix time in *milliseconds* (Messenger/Instagram) to an aware UTC datetime."""
    return _from_millis(millis(value, where), where)
