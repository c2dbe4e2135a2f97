"""Retry a database call through an outage: capped exponential backoff, fresh connections.

Used by the worker's lanes (``statuses.lanes``) and by a send recording the provider's answer
(``statuses.sending``), which must outlive a database outage rather than lose it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

log = logging.getLogger("statuses.worker")

DB_ERRORS = (OperationalError, InterfaceError)
T = TypeVar("T")


class Backoff:
    """Capped exponential delays: 0.5 s, 1 s, 2 s … ``cap``; ``reset()`` after a success."""

    def __init__(self, base: float = 0.5, cap: float | None = None):
        self.base = base
        self.cap = settings.WORKER_DB_RETRY_MAX if cap is None else cap
        self.failures = 0

    def next(self) -> float:
        delay = min(self.base * 2**self.failures, self.cap)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


def reset_connections() -> None:
    """Close this thread's database connections, however broken (a pool discards bad ones)."""
    for conn in connections.all(initialized_only=True):
        with contextlib.suppress(Exception):  # a dead connection may refuse to close
            conn.close()


def retry_db(
    fn: Callable[[], T],
    *,
    what: str,
    keep_going: Callable[[], bool] = lambda: True,
    give_up_after: float | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``fn`` until it gets through to the database; re-raise once we must stop trying."""
    backoff = Backoff()
    started = time.monotonic()
    while True:
        try:
            return fn()
        except DB_ERRORS as exc:
            waited = time.monotonic() - started
            if not keep_going() or (give_up_after is not None and waited >= give_up_after):
                raise
            delay = backoff.next()
            log.warning(
                "%s: database unavailable (%s: %s); retrying in %.1f s",
                what,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                delay,
            )
            reset_connections()
            sleep(delay)
