"""Django's PostgreSQL backend with the pool's checkout check of ``config.dbpool``, and the hot
statements' generic plans.

Django builds the psycopg pool itself and passes it ``check=`` from ``CONN_HEALTH_CHECKS``
(the stock check, a round trip per checkout, or none), so a different check can only be given
where the pool is built.

The hot paths' statements (``inbox.rowsql.hot_cursor``) are prepared so that PostgreSQL plans
them once. By default it does not: it plans a prepared statement anew on every call as long as
the generic plan's estimate is above the average custom plan's, and for ``= ANY($1::uuid[])``,
``unnest($1)`` or a new message's one statement it always was. Planning again on every call
cost ~0.7 ms of a create's ~2.5 ms of PostgreSQL CPU (bench/README.md, tenth round). So each
connection runs generic plans (``plan_cache_mode``). Only the hot statements are affected: the
ORM binds its values in the text (no parameters, so no choice to make), and the triggers'
statements already ran generic plans. ``tests/api/test_prepared_plans.py`` holds every hot
statement to one plan that uses its indexes. Everything else is Django's backend unchanged.
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.postgresql import base

from config import dbpool


class DatabaseWrapper(base.DatabaseWrapper):
    def _configure_connection(self, connection) -> bool:
        # Called for every new connection: by the pool, or by ``init_connection_state``.
        commit = super()._configure_connection(connection)
        if settings.TICKMARK_PREPARED_STATEMENTS:
            with connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_generic_plan")
            commit = True
        return commit

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
