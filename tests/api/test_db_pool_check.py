"""The pool's checkout check (config.dbpool): no round trip for a live connection, and a
connection whose backend died while pooled is never handed out."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from config import dbpool

pytestmark = pytest.mark.requires_postgres("checks real PostgreSQL connections and backends")


def conninfo() -> str:
    s = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=s["HOST"], port=s.get("PORT") or 5432, user=s["USER"], dbname="postgres"
    )


@pytest.fixture
def stock_checks(monkeypatch):
    calls = []
    stock = ConnectionPool.check_connection

    def counted(conn):
        calls.append(conn)
        return stock(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return calls


def test_the_pool_of_the_settings_uses_the_socket_check():
    check = connection.pool._check  # noqa: SLF001 - where psycopg_pool keeps it
    assert isinstance(check, dbpool.PoolCheck)
    assert check.pool is connection.pool
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is False


def test_a_live_idle_connection_is_handed_out_without_a_round_trip(stock_checks):
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute("SELECT 1").fetchall()
        for _ in range(3):
            dbpool.check(conn)
        assert stock_checks == []
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_a_pooled_connection_whose_backend_was_terminated_is_replaced(stock_checks):
    pool = ConnectionPool(
        conninfo(),
        min_size=1,
        max_size=1,
        check=dbpool.check,
        kwargs={"autocommit": True},
        open=False,
    )
    pool.open(wait=True)
    try:
        with pool.connection() as conn:
            first = conn.info.backend_pid
        with psycopg.connect(conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first])
        time.sleep(0.2)  # the server's goodbye reaches the pooled connection's socket
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != first
        assert stock_checks, "the dead connection was only found by the stock check"
    finally:
        pool.close()


def test_a_closed_connection_is_refused():
    conn = psycopg.connect(conninfo(), autocommit=True)
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        dbpool.check(conn)


def test_once_one_pooled_connection_is_found_dead_the_others_are_swept():
    """After an outage every idle connection is dead. psycopg_pool tries the next one only
    after a back-off of 1, 2, 4 s: four dead ones outlast a 5 s checkout timeout. Swept at the
    first, the checkout gets a new connection after one back-off."""
    check = dbpool.PoolCheck()
    pool = ConnectionPool(
        conninfo(),
        min_size=4,
        max_size=4,
        timeout=5,
        check=check,
        kwargs={"autocommit": True},
        open=False,
    )
    check.pool = pool
    pool.open(wait=True)
    try:
        held = [pool.getconn() for _ in range(4)]
        pids = [conn.info.backend_pid for conn in held]
        for conn in held:
            pool.putconn(conn)
        with psycopg.connect(conninfo(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
        time.sleep(0.2)  # the server's goodbye reaches the pooled connections' sockets
        with pool.connection() as conn:  # PoolTimeout without the sweep
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid not in pids
        assert pool.get_stats()["connections_lost"] >= 3  # the swept ones, replaced
    finally:
        pool.close()
