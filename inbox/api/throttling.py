"""Throttle failed authentication: a client guessing API keys is slowed down per IP.

Counted in Django's cache (the ``default`` cache, so a shared cache such as Redis makes the
limit global across processes; with the local-memory default it is per process). The rate is
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth_failure"]`` (e.g. ``"20/min"``). Successful
requests are not counted; only presented keys that are unknown or revoked are.
"""

from __future__ import annotations

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

SCOPE = "auth_failure"
DEFAULT_RATE = "20/min"


class _Ident(SimpleRateThrottle):
    # Only borrowed for DRF's client identification (REMOTE_ADDR, NUM_PROXIES) and rate parsing.
    rate = DEFAULT_RATE

    def get_cache_key(self, request, view):  # pragma: no cover - unused
        return None


def _limit() -> tuple[int, int]:
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(SCOPE) or DEFAULT_RATE
    return _Ident().parse_rate(rate)


def _cache_key(request: Request) -> str:
    return f"tm:auth-failures:{_Ident().get_ident(request)}"


def auth_failures_check(request: Request) -> None:
    """Refuse (429) a client whose recent failed attempts reached the limit."""
    allowed, window = _limit()
    if (cache.get(_cache_key(request)) or 0) >= allowed:
        raise exceptions.Throttled(
            wait=window, detail="Too many failed authentication attempts. Try again later."
        )


def auth_failure_record(request: Request) -> None:
    _, window = _limit()
    key = _cache_key(request)
    # add() starts a fixed window; incr() is atomic on every cache backend that supports it.
    cache.add(key, 0, timeout=window)
    try:
        cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=window)
