"""Provider-neutral HTTP plumbing for the adapters that send over HTTP.

This module is not a provider (it is not in the registry); the provider modules import it.

- ``exchange`` sends one request and turns a transport failure into a ``SendResult`` according
  to a ``TransportPolicy``: what counts as "never reached the provider" (TRANSIENT, safe to
  retry), what means the request cannot even be made (REJECTED), and what a lost answer is
  (UNKNOWN by default: the provider may have the message already).
- ``transport_errors`` builds the catalogue entries that explain ``connection_failed`` and
  ``no_response`` for one provider.
- ``response_json``, ``retry_after``, ``is_busy``, ``accepted`` and ``refused`` read an answer.
- ``missing_config`` and ``base_url`` read an inbox's config.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from statuses import netguard
from statuses.providers.base import ErrorInfo, SendOutcome, SendResult

RETRIES = "Tickmark retries automatically."

# Nothing reached the provider: retrying cannot send the message twice.
CONNECT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


def describe(exc: BaseException) -> str:
    """A short reason for a failed request, without the exception's text.

    The text (``[Errno 111] Connection refused``, a resolver error, a blocked address) would tell
    whoever reads the message's error what lies behind the URL they configured — a port scanner
    (issue #10). A refused connection and a refused address both read "connection failed".
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError):
        return netguard.CONNECTION_FAILED
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return "invalid request"
    return "no valid HTTP answer"


def exception_name(exc: BaseException) -> str:
    """Only the exception's class name: for requests whose URL holds a secret."""
    return type(exc).__name__


@dataclass(frozen=True)
class TransportPolicy:
    """How ``exchange`` maps a failed request to a ``SendResult``.

    ``connect``: exceptions meaning nothing reached the provider (TRANSIENT ``connection_failed``).
    ``unusable``: exceptions meaning the request cannot be made at all, e.g. a bad base URL
    (REJECTED ``unusable_code``); they are caught even when they are no ``TransportError``.
    ``unanswered``: the outcome of any other transport error (``no_response``) — UNKNOWN unless
    the provider makes a repeat harmless. ``catalogue`` gives the error titles (none without it);
    ``detail`` renders the exception.
    """

    catalogue: Mapping[str, ErrorInfo] | None = None
    connect: tuple[type[Exception], ...] = CONNECT_ERRORS
    unusable: tuple[type[Exception], ...] = ()
    unusable_code: str = "invalid_request"
    unanswered: SendOutcome = SendOutcome.UNKNOWN
    detail: Callable[[BaseException], str] = describe

    def failure(self, exc: Exception) -> SendResult:
        """Return the ``SendResult`` for a request that raised ``exc``."""
        if isinstance(exc, self.connect):
            outcome, code = SendOutcome.TRANSIENT, "connection_failed"
        elif isinstance(exc, self.unusable):
            outcome, code = SendOutcome.REJECTED, self.unusable_code
        else:
            outcome, code = self.unanswered, "no_response"
        info = self.catalogue.get(code) if self.catalogue is not None else None
        return SendResult(
            outcome,
            error_code=code,
            error_title=info.title if info else "",
            error_detail=self.detail(exc),
        )


# The Meta, Twilio and Bandwidth senders: a proxy failure also happened before sending, and a
# request that cannot be made is rejected rather than retried.
STRICT = TransportPolicy(
    connect=(*CONNECT_ERRORS, httpx.ProxyError),
    unusable=(httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL),
)


def exchange(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    policy: TransportPolicy = STRICT,
    **kwargs: Any,
) -> httpx.Response | SendResult:
    """Send one request; turn a transport failure into the ``SendResult`` ``policy`` says."""
    try:
        return client.request(method, url, **kwargs)
    except (httpx.TransportError, *policy.unusable) as exc:
        return policy.failure(exc)


def transport_errors(
    peer: str,
    *,
    reach: str = "",
    connect_hint: str = RETRIES,
    lost_answer: str = "",
    lost_answer_hint: str = "Check the conversation before resending, to avoid a duplicate.",
) -> dict[str, ErrorInfo]:
    """Catalogue entries for ``connection_failed`` and ``no_response`` with ``peer``.

    ``reach`` is what the connection goes to (default ``peer``); ``lost_answer`` explains a
    lost answer (default: the message may have gone out).
    """
    return {
        "connection_failed": ErrorInfo(
            f"Could not reach {peer}",
            f"The connection to {reach or peer} failed before the message was handed over.",
            connect_hint,
            permanent=False,
        ),
        "no_response": ErrorInfo(
            f"No answer from {peer}",
            lost_answer
            or f"The message was handed over but {peer}'s answer never came, so it may have "
            "gone out.",
            lost_answer_hint,
            permanent=False,
        ),
    }


def response_json(response: httpx.Response, *, keep_other: bool = True) -> dict[str, Any]:
    """Return the response's JSON object.

    Anything else is ``{"body": …}`` (the JSON value, or up to 2000 characters of text; ``{}``
    for an empty body), or ``{}`` with ``keep_other=False``. (``raw`` is for parsing only; it
    is never stored nor shown.)
    """
    try:
        body = response.json()
    except ValueError:
        if not keep_other:
            return {}
        return {"body": response.text[:2000]} if response.content else {}
    if isinstance(body, dict):
        return body
    return {"body": body} if keep_other else {}


def retry_after(response: httpx.Response, given: float | None = None) -> float | None:
    """Seconds to wait before retrying, or None.

    ``given`` is a delay the provider stated in its body (e.g. Telegram's
    ``parameters.retry_after``) and wins; otherwise ``Retry-After`` is read (seconds or an HTTP
    date, as seconds from now). A value that is not finite is ignored.
    """
    if given is not None:
        return given
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def is_busy(response: httpx.Response) -> bool:
    """Rate-limited (429) or a server error (5xx): the same request can succeed later."""
    return response.status_code == 429 or response.status_code >= 500


def accepted(
    response: httpx.Response, body: dict[str, Any], provider_id: object, *, what: str = "message id"
) -> SendResult:
    """A 2xx answer: ACCEPTED with the provider's id, or UNKNOWN when the id is missing.

    Without an id, statuses can still find the message through the correlation id, but we
    cannot claim it was sent.
    """
    if isinstance(provider_id, str) and provider_id:
        return SendResult(SendOutcome.ACCEPTED, provider_message_id=provider_id, raw=body)
    return SendResult(
        SendOutcome.UNKNOWN,
        error_code="no_message_id",
        error_detail=f"HTTP {response.status_code} without a {what}",
        raw=body,
    )


def refused(
    response: httpx.Response,
    body: dict[str, Any],
    code: str,
    title: str,
    detail: str,
    *,
    transient: bool | None = None,
    wait: float | None = None,
) -> SendResult:
    """A refusal: TRANSIENT (with the retry delay) when ``transient``, else REJECTED.

    ``transient`` defaults to ``is_busy(response)``; ``wait`` is passed to ``retry_after``.
    """
    if transient is None:
        transient = is_busy(response)
    if transient:
        return SendResult(
            SendOutcome.TRANSIENT,
            error_code=code,
            error_title=title,
            error_detail=detail,
            retry_after=retry_after(response, wait),
            raw=body,
            rate_limited=response.status_code == 429,
        )
    return SendResult(
        SendOutcome.REJECTED, error_code=code, error_title=title, error_detail=detail, raw=body
    )


def unexpected_answer(
    response: httpx.Response, body: dict[str, Any], catalogue: Mapping[str, ErrorInfo]
) -> SendResult:
    """REJECTED ``http_error``: an API that answers errors in a JSON status sent something else."""
    return refused(
        response,
        body,
        "http_error",
        catalogue["http_error"].title,
        # Never the body: it would read an internal service's answer back (issue #10).
        f"HTTP {response.status_code}",
        transient=False,
    )


def status_error(
    response: httpx.Response, catalogue: Mapping[str, ErrorInfo], unknown_title: str
) -> tuple[str, str]:
    """(code, title) for an API whose error code is the HTTP status.

    Busy answers are ``"429"`` or ``"500"`` (both must be in ``catalogue``); any other status is
    its own code, titled from ``catalogue`` or ``unknown_title``.
    """
    if is_busy(response):
        code = "429" if response.status_code == 429 else "500"
        return code, catalogue[code].title
    code = str(response.status_code)
    info = catalogue.get(code)
    return code, info.title if info else unknown_title


def missing_config(config: dict[str, Any], *keys: str) -> SendResult | None:
    """Reject a send whose inbox lacks a required key, instead of raising in the worker."""
    missing = [key for key in keys if not config.get(key)]
    return misconfigured(", ".join(missing)) if missing else None


def misconfigured(missing: str) -> SendResult:
    """Reject a send because the inbox's config lacks ``missing`` (a description of keys)."""
    return SendResult(
        SendOutcome.REJECTED,
        error_code="misconfigured",
        error_title="Inbox is missing settings",
        error_detail=f"missing config: {missing}",
    )


def base_url(config: dict[str, Any], default: str) -> str:
    """The inbox's ``api_base_url`` (tests, the simulator) or the provider's, without a
    trailing slash."""
    return str(config.get("api_base_url") or default).rstrip("/")
