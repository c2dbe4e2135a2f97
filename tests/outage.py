"""Take the test database away for real, from a separate superuser connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection


@contextmanager
def database_down() -> Iterator[int]:
    """Refuse new connections to the test database and cut the existing ones, then restore."""
    settings = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("a database outage is staged on PostgreSQL")
    name = settings["NAME"]
    connection.close()  # ours goes too; reopened after the outage
    admin = psycopg.connect(
        host=settings["HOST"],
        port=settings.get("PORT") or 5432,
        user=settings["USER"],
        password=settings.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        terminated = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchone()[0]
        yield terminated
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
        connection.close()
