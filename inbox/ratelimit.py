"""Rate limits counted in the shared cache, and the client address they count by.

Counters live in Django's ``default`` cache — Redis when ``REDIS_URL`` is set — so every web
process sees the same counts: a client cannot spread its attempts over processes or machines.
Each limit is a fixed window aligned on the clock (the window number is part of the key), so the
time left until the window ends is exact (``Retry-After``) and a key is never written after its
window, which lets it expire on its own.

The client address is ``REMOTE_ADDR`` (the ASGI scope's client) unless proxies are configured:
``X-Forwarded-For`` is written by whoever sends the request, so it is only read when
``TICKMARK_TRUSTED_PROXIES`` says how many proxies of ours append to it, and then only the
entry the outermost of them wrote. IPv6 clients are counted per /64, the block one host gets.

A cache outage lets requests through (logged, and the cache is left alone for a few seconds
before the next try): a rate limit must not take the service down.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse

log = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])[a-z]*\s*$", re.IGNORECASE)
# A key outlives its window by this much, so processes whose clocks differ a little still agree.
_CLOCK_SLACK = 60
# After a cache error, skip the cache this long: an outage must not add a connect timeout to
# every request (process-local; the first call after the pause tries again).
_OUTAGE_PAUSE = 5.0
_cache_down_until = 0.0


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` events per ``window`` seconds."""

    limit: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """Read ``"10/min"``, ``"5/15min"``, ``"100/hour"``; empty or ``"off"`` means no limit."""
        if not text.strip() or text.strip().lower() == "off":
            return None
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"Invalid rate {text!r}: use e.g. '10/min', '5/15min', '100/hour'.")
        count, multiplier, unit = match.groups()
        return cls(limit=int(count), window=int(multiplier or 1) * _UNITS[unit.lower()])


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until the window that refused ends

    def message(self, what: str) -> str:
        return f"{what} Try again in {_human(self.retry_after)}."


ALLOWED = Verdict(allowed=True)


def rate_setting(name: str) -> Rate | None:
    """The rate named by a setting, read at call time (so tests can override it)."""
    return Rate.parse(str(getattr(settings, name)))


def hit(scope: str, ident: str, rate: Rate | None) -> Verdict:
    """Count one event of ``ident``; refuse it when it is past ``rate.limit`` in this window."""
    if rate is None:
        return ALLOWED
    if _cache_paused():
        return ALLOWED
    key, retry_after = _key(scope, ident, rate)
    try:
        # add() starts the window; incr() is atomic on every backend. The key cannot expire
        # between the two: it outlives the window, and later windows use other keys.
        cache.add(key, 0, timeout=rate.window + _CLOCK_SLACK)
        count = cache.incr(key)
    except Exception:  # the cache is unreachable: let the request through
        _cache_failed(f"rate limit {scope} not counted")
        return ALLOWED
    return ALLOWED if count <= rate.limit else Verdict(False, retry_after)


def peek(scope: str, ident: str, rate: Rate | None) -> Verdict:
    """Refuse when this window already holds ``rate.limit`` events of ``ident``; count nothing."""
    if rate is None:
        return ALLOWED
    if _cache_paused():
        return ALLOWED
    key, retry_after = _key(scope, ident, rate)
    try:
        count = cache.get(key) or 0
    except Exception:  # the cache is unreachable: let the request through
        _cache_failed(f"rate limit {scope} not read")
        return ALLOWED
    return ALLOWED if count < rate.limit else Verdict(False, retry_after)


def reset(scope: str, ident: str, rate: Rate | None) -> None:
    """Forget this window's events of ``ident``."""
    if rate is None or _cache_paused():
        return
    try:
        cache.delete(_key(scope, ident, rate)[0])
    except Exception:
        _cache_failed(f"rate limit {scope} not reset")


def hit_each(limits: Iterable[tuple[str, str, Rate | None]]) -> Verdict:
    """Count the event against each ``(scope, ident, rate)`` in turn, stopping at a refusal.

    Put the narrowest limit first: a client refused by its own limit then uses up nothing of
    a wider one (an address hammering a widget does not spend the inbox's budget).
    """
    for scope, ident, rate in limits:
        verdict = hit(scope, ident, rate)
        if not verdict.allowed:
            return verdict
    return ALLOWED


# For consumers: off the event loop, and not in the thread the ORM calls share.
ahit = sync_to_async(hit, thread_sensitive=False)


def first_refusal(verdicts: Iterable[Verdict]) -> Verdict:
    """The refusal that ends last, or ``ALLOWED``."""
    refused = [v for v in verdicts if not v.allowed]
    return max(refused, key=lambda v: v.retry_after) if refused else ALLOWED


def too_many_requests(verdict: Verdict, message: str) -> JsonResponse:
    """The JSON 429 every throttled endpoint answers, with ``Retry-After``."""
    response = JsonResponse(
        {
            "error": {
                "code": "rate_limited",
                "message": verdict.message(message),
                "retry_after": verdict.retry_after,
            }
        },
        status=429,
    )
    response["Retry-After"] = str(verdict.retry_after)
    return response


# ---------------------------------------------------------------------------------------------
# Who is asking


def client_address(remote_addr: str, forwarded_for: str | None) -> str:
    """The caller's address as counted: ``REMOTE_ADDR``, or what our outermost proxy saw."""
    address = remote_addr
    hops = int(settings.TICKMARK_TRUSTED_PROXIES)
    if hops > 0 and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for.split(",") if entry.strip()]
        if entries:
            # Each proxy appends the address it was reached from; with N proxies of ours the
            # N-th entry from the right was written by the outermost one. Anything left of it
            # came from the client and proves nothing.
            address = entries[-min(hops, len(entries))]
    return _normalise(address)


def request_client(request: HttpRequest) -> str:
    return client_address(
        request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR")
    )


def scope_client(scope: dict[str, Any]) -> str:
    """The same for an ASGI (WebSocket) scope."""
    client = scope.get("client") or ("", 0)
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    ]
    return client_address(str(client[0]), ",".join(forwarded) or None)


def _normalise(address: str) -> str:
    # Every webhook and API call asks (``statuses.asgi``): parsing the address each time was
    # ~1.5 % of daphne's GIL samples under webhook load, and callers come from few addresses.
    # Only what could be an address is kept (an IPv6 one is at most 45 characters).
    return _normalised(address) if len(address) <= 64 else _parse(address)


@lru_cache(maxsize=4096)
def _normalised(address: str) -> str:
    return _parse(address)


def _parse(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()[:100] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _cache_paused() -> bool:
    return time.monotonic() < _cache_down_until


def _cache_failed(what: str) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + _OUTAGE_PAUSE
    log.warning("%s: cache unavailable, limits paused for %ss", what, _OUTAGE_PAUSE, exc_info=True)


def _key(scope: str, ident: str, rate: Rate) -> tuple[str, int]:
    now = time.time()
    window_number = int(now // rate.window)
    retry_after = max(1, math.ceil((window_number + 1) * rate.window - now))
    # Hashed: bounded key length, and no usernames or addresses readable in the cache.
    digest = hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()
    return f"ratelimit:{scope}:{rate.window}:{window_number}:{digest}", retry_after


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
