"""Rate limit for rejected webhook calls, per inbox and source address (issue #10 item 3).

A webhook URL is public, so anyone can post to it. Rejected calls are recorded without their
body, and once one source has had ``TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE`` calls to one inbox
rejected in the current minute, its further rejected calls are answered 429 (with Retry-After)
and not recorded at all. A call that passes verification is never refused here, so a flood of
forgeries cannot block the provider's real webhooks, even from behind the same proxy.

The counter lives in Django's cache (Redis when configured, so every web process shares it);
if the cache is unavailable the call is treated as within the limit (ingestion never fails
because of the limiter).
"""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

WINDOW = 60  # seconds


def over_limit(inbox_id: uuid.UUID, source: str, *, now: float | None = None) -> int | None:
    """Count one rejected call; return the seconds to wait if it is over the limit, else None."""
    limit = int(getattr(settings, "TICKMARK_REJECTED_WEBHOOKS_PER_MINUTE", 30))
    if limit <= 0:
        return None
    current = time.time() if now is None else now
    window = int(current // WINDOW)
    key = f"tickmark:rejected-webhooks:{inbox_id}:{_bucket(source)}:{window}"
    try:
        cache.add(key, 0, timeout=WINDOW * 2)
        count = cache.incr(key)
    except Exception:  # a cache outage must not turn into lost webhooks
        log.warning("rejected-webhook counter unavailable", exc_info=True)
        return None
    if count <= limit:
        return None
    return max(1, (window + 1) * WINDOW - int(current))


def _bucket(source: str) -> str:
    """The address counted against: an IPv6 client is counted per /64, which one subscriber
    usually holds whole (rotating addresses inside it must not reset the count)."""
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return source[:100] or "-"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)
