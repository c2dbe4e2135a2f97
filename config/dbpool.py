"""The database pool's check of a connection it hands out, without a round trip when the
connection is evidently alive.

psycopg_pool's stock check (``ConnectionPool.check_connection``, which Django installs with
``CONN_HEALTH_CHECKS``) sends an empty query on every checkout: one round trip per request, a
quarter of the CPU time of a message lookup in a py-spy profile of daphne (bench/README.md).
A connection that went bad while it sat in the pool — the server restarted, the backend was
terminated, the network cut — has something to read on its socket: the server's goodbye
(``FATAL: terminating connection``) or end-of-file. So the socket is polled first, and only a
connection with something to say gets the stock check, which finds it dead and makes the pool
discard it. A silent failure (a host that vanished without a FIN) is not seen here; its first
query fails, the request answers 503 (``config.health``) and the pool drops the broken
connection when it comes back.

One dead connection means the others most likely died with it (a restart, an outage that
terminated every backend), and psycopg_pool tries the next idle one only after a back-off of
1, 2, 4… seconds: a pool of sixteen dead connections timed a checkout out (10 s) after the
database was back (tests/e2e/test_outage.py, after the webhook tests had grown the pool). So
``PoolCheck`` sweeps the pool's other idle connections (psycopg_pool's ``check()``: each is
checked, the dead ones replaced) as soon as one is found dead; the checkout waits one back-off
and gets a new connection.
"""

from __future__ import annotations

import select

from psycopg import Connection
from psycopg_pool import ConnectionPool


def check(conn: Connection) -> None:
    """``check=`` of the pool: raise if ``conn`` must not be handed out."""
    if conn.closed or conn.broken:
        ConnectionPool.check_connection(conn)  # raises for a closed or broken connection
        return
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        readable = [True]
    if readable:
        ConnectionPool.check_connection(conn)


class PoolCheck:
    """``check=`` of one pool: ``check``, and a sweep of the pool's idle connections when a
    connection is found dead. ``pool`` is set once the pool is built."""

    def __init__(self) -> None:
        self.pool: ConnectionPool | None = None

    def __call__(self, conn: Connection) -> None:
        try:
            check(conn)
        except Exception:
            if self.pool is not None:
                self.pool.check()  # the dead one is checked out: the others are swept now
            raise
