"""Django's PostgreSQL backend with the pool's checkout check of ``config.dbpool``.

Django builds the psycopg pool itself and passes it ``check=`` from ``CONN_HEALTH_CHECKS``
(the stock check, a round trip per checkout, or none), so a different check can only be given
where the pool is built. Everything else is Django's backend unchanged.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from config import dbpool


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == base.NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            from psycopg_pool import ConnectionPool

            params = self.get_connection_params()
            params["autocommit"] = True  # Django sets the mode it wants on each checkout
            check = dbpool.PoolCheck()
            pool = ConnectionPool(
                kwargs=params,
                open=False,  # opened on first use, as Django does
                configure=self._configure_connection,
                check=check,
                **({} if options is True else options),
            )
            check.pool = pool
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
