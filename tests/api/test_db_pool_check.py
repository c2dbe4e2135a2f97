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
    assert connection.pool._check is dbpool.check  # noqa: SLF001 - where psycopg_pool keeps it
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
