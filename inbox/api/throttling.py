"""Throttle failed API-key authentication per client address.

Only failures count — a presented key that is unknown or revoked — and only failures are
refused: a valid key always authenticates, even from an address that is over the limit, so a
stranger guessing keys from a shared address (or spoofing one) cannot lock a real client out.
Counted in the shared cache (``inbox.ratelimit``), by the client address as our own proxies saw
it (``TICKMARK_TRUSTED_PROXIES``; ``X-Forwarded-For`` is ignored by default). The rate is
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth_failure"]`` (``API_AUTH_FAILURE_RATE``).
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from inbox import ratelimit

SCOPE = "auth_failure"
DEFAULT_RATE = "20/min"


def auth_failure_record(request: Request) -> None:
    """Count a failed attempt; refuse (429) when the client is past the limit."""
    rate = ratelimit.Rate.parse(api_settings.DEFAULT_THROTTLE_RATES.get(SCOPE) or DEFAULT_RATE)
    verdict = ratelimit.hit(SCOPE, ratelimit.request_client(request), rate)
    if not verdict.allowed:
        raise exceptions.Throttled(
            wait=verdict.retry_after,
            detail="Too many failed authentication attempts. Try again later.",
        )
