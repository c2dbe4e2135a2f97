"""Every API error, mapped to ``{"error": {"code": "...", "message": "..."}}`` in one place.

Domain errors (``inbox.exceptions.InboxError``) carry their own code and HTTP status; DRF's
errors keep theirs. Validation errors also name the offending ``field`` and list every
problem in ``details`` (``{field: [messages]}``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from inbox.exceptions import InboxError

_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "parse_error",
    exceptions.ValidationError: "validation_error",
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DB_UNAVAILABLE):
        return database_unavailable_response()
    if isinstance(exc, InboxError):
        set_rollback()
        extra = getattr(exc, "extra", {})  # e.g. a provider's own error code and message
        return Response(error_body(exc.code, exc.message, **extra), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django answer 500 and log it

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc.detail)
    else:
        body = error_body(_code_of(exc), _text(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


# The database is down or restarting: tell the client to come back (never an HTML 500).
DB_UNAVAILABLE = (OperationalError, InterfaceError)
DB_RETRY_AFTER = 5


def database_unavailable_response() -> Response:
    set_rollback()
    for conn in connections.all(initialized_only=True):
        try:
            conn.close_if_unusable_or_obsolete()  # do not hand the broken connection on
        except DB_UNAVAILABLE:
            conn.close()
    return Response(
        error_body(
            "database_unavailable",
            "The database is unavailable right now. Retry shortly.",
        ),
        status=503,
        headers={"Retry-After": str(DB_RETRY_AFTER)},
    )


def _code_of(exc: exceptions.APIException) -> str:
    detail_code = getattr(exc.detail, "code", None)
    default = _CODES.get(type(exc)) or next(
        (code for cls, code in _CODES.items() if isinstance(exc, cls)), "error"
    )
    # Authenticators raise specific codes (invalid_api_key, revoked_api_key); keep those.
    if detail_code and detail_code not in {exc.default_code, "invalid", "error"}:
        return str(detail_code)
    return default


def _text(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_text(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    return str(detail)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{"config": {"access_token": ["..."]}}`` → ``{"config.access_token": ["..."]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):  # a list item (ListField errors are keyed by index)
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, name))
        return flat
    if isinstance(detail, list) and any(isinstance(d, dict | list) for d in detail):
        flat = {}
        for index, value in enumerate(detail):
            flat.update(_flatten(value, f"{prefix}[{index}]"))
        return flat
    messages = [str(d) for d in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def _validation_body(detail: Any) -> dict[str, Any]:
    details = _flatten(detail)
    field, messages = next(iter(details.items()), ("non_field_errors", ["Invalid input."]))
    message = messages[0] if field == "non_field_errors" else f"{field}: {messages[0]}"
    return error_body(
        "validation_error",
        message,
        field=None if field == "non_field_errors" else field,
        details=details,
    )
