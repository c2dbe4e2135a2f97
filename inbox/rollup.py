"""The delivery rollup (``DeliveryHour``, ``DeliveryDuration``), kept by PostgreSQL triggers.

Delivery analytics over a million messages cannot read the messages (sorting ~800,000 durations for
a percentile alone costs a second; bench/README.md), so they read a rollup per hour and per day of
creation instead: counts by current status and error code, and histograms of time to deliver and
time to read. Statement-level ``AFTER INSERT/UPDATE/DELETE`` triggers with transition tables keep
it in the transaction of every write to a message, whatever writes it — the status service's one
``UPDATE … FROM unnest`` per batch, message creation, sends, sweeps, resends, deletions, the admin,
raw SQL — so no write path can forget it and none gains a line of Python. Each trigger runs two
statements per writing statement (one upsert per table), set-based over the rows it wrote: a
message moving from ``sent`` to ``read`` is -1 on its old row and +1 on its new one.

Histogram bins are log-spaced by ``RATIO`` (5 %): bin 0 holds durations under 1 ms (and
negative ones, from skewed provider clocks), bin k ≥ 1 holds [RATIO^(k-1), RATIO^k) ms, and the
last bin everything from about 7.3 days up. A percentile read from them lies in the bin of the
exact one, so within 5 % of it (``inbox/analytics.py`` reads exact percentiles while a period
holds few enough messages).

SQLite (the embedded, small-data mode) has no rollup: analytics read the messages there.
To add a dimension (a campaign, a template id): a key column on both tables, its expression in
``_KEY``, a migration that calls ``install`` and ``rebuild``.
"""

from __future__ import annotations

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

TABLE = "inbox_message"
HOURS = "inbox_deliveryhour"
DURATIONS = "inbox_deliveryduration"
RATIO = 1.05
LAST_BIN = 416  # RATIO ** 415 ms ≈ 7.3 days: everything longer shares the last bin
SHARDS = 4
# Advisory-lock space of the shards (the two-int4 form: apart from the bigint keys of
# ``statuses.services.sql``): (SHARD_LOCK, shard) is held by the transaction writing that shard.
SHARD_LOCK = 1_450_000_016
FAILED = "('failed', 'expired')"

# Key columns and the expression of each over a message row ``d`` and its bucket ``b``.
_KEY = {
    "account_id": "d.account_id",
    "daily": "b.daily",
    "bucket": "b.bucket",
    "inbox_id": "d.inbox_id",
    "channel_type": "d.channel_type",
    "template_name": "COALESCE(d.template ->> 'name', '')",
}
# Every message counts in its hour and in its UTC day: long periods read days, edges hours.
_BUCKETS = (
    "CROSS JOIN LATERAL (VALUES (false, date_trunc('hour', d.created_at, 'UTC')), "
    "(true, date_trunc('day', d.created_at, 'UTC'))) AS b(daily, bucket)"
)
_COLUMNS = "account_id, inbox_id, channel_type, template, created_at, direction, status, " + (
    "error_code, error_title, sent_at, delivered_at, read_at"
)


def bin_sql(milliseconds: str) -> str:
    """The histogram bin of a duration in ms (SQL); ``bin_bounds`` is its inverse.

    ``ln`` of a ``numeric`` (what ``extract`` returns) costs ~10 µs: most of the rollup's share
    of a 100-status write. So the bin is found in double precision, whose error here is ~1e-13,
    and only a duration within 1e-9 of a bin edge takes the exact ``numeric`` path: every
    duration lands in the same bin as with ``numeric`` alone, so the rollup does not change."""
    ms = f"({milliseconds})"
    position = f"(ln({ms}::float8) / ln({RATIO}::float8))"
    exact = f"floor(ln({ms}) / ln({RATIO}))::int"
    return (
        f"CASE WHEN {ms} IS NULL THEN NULL WHEN {ms} < 1 THEN 0 ELSE LEAST(CASE "
        f"WHEN abs({position} - round({position})) < 1e-9 THEN {exact} "
        f"ELSE floor({position})::int END + 1, {LAST_BIN}) END"
    )


def bin_bounds(bin_: int) -> tuple[float, float]:
    """[low, high) ms of a bin; the last bin reports its lower bound only."""
    if bin_ <= 0:
        return 0.0, 1.0
    low = RATIO ** (bin_ - 1)
    return low, low if bin_ >= LAST_BIN else RATIO**bin_


def milliseconds_sql(later: str, earlier: str) -> str:
    return f"extract(epoch FROM {later} - {earlier}) * 1000"


def _source(old: str | None, new: str | None) -> str:
    parts = [f"SELECT {_COLUMNS}, -1 AS sign FROM {old}" if old else ""]
    parts.append(f"SELECT {_COLUMNS}, 1 AS sign FROM {new}" if new else "")
    return " UNION ALL ".join(p for p in parts if p)


def _upserts(old: str | None, new: str | None, shard: str) -> list[str]:
    """The two set-based upserts that add the rows of ``new`` and take away those of ``old``.

    Rows are inserted in key order, so concurrent writers lock rollup rows in one order."""
    source = _source(old, new)
    keys = ", ".join(_KEY)
    key_exprs = ", ".join(_KEY.values())
    hour_key = f"{keys}, status, error_code, shard"
    hour_positions = ", ".join(str(i) for i in range(1, len(_KEY) + 4))
    hours = (
        f"INSERT INTO {HOURS} AS r ({hour_key}, n, n_delivered_at, n_read_at, error_title) "
        f"SELECT {key_exprs}, status, "
        f"CASE WHEN status IN {FAILED} THEN error_code ELSE '' END, {shard}, "
        "sum(sign), sum(sign * (delivered_at IS NOT NULL)::int), "
        "sum(sign * (read_at IS NOT NULL)::int), "
        f"max(CASE WHEN status IN {FAILED} AND sign > 0 THEN error_title ELSE '' END) "
        f"FROM ({source}) AS d {_BUCKETS} WHERE direction = 'outgoing' "
        f"GROUP BY {hour_positions} "
        "HAVING sum(sign) <> 0 OR sum(sign * (delivered_at IS NOT NULL)::int) <> 0 "
        "OR sum(sign * (read_at IS NOT NULL)::int) <> 0 "
        f"ORDER BY {hour_positions} "
        f"ON CONFLICT ({hour_key}) DO UPDATE SET n = r.n + excluded.n, "
        "n_delivered_at = r.n_delivered_at + excluded.n_delivered_at, "
        "n_read_at = r.n_read_at + excluded.n_read_at, "
        "error_title = GREATEST(r.error_title, excluded.error_title)"
    )
    duration_key = f"{keys}, measure, bin"
    duration_positions = ", ".join(str(i) for i in range(1, len(_KEY) + 3))
    durations = (
        f"INSERT INTO {DURATIONS} AS r ({duration_key}, n) "
        f"SELECT {key_exprs}, m.measure, {bin_sql('m.ms')}, sum(sign) "
        f"FROM ({source}) AS d {_BUCKETS} CROSS JOIN LATERAL (VALUES "
        f"(0, {milliseconds_sql('d.delivered_at', 'd.sent_at')}), "
        f"(1, {milliseconds_sql('d.read_at', 'd.sent_at')})) AS m(measure, ms) "
        "WHERE d.direction = 'outgoing' AND d.delivered_at IS NOT NULL AND m.ms IS NOT NULL "
        f"GROUP BY {duration_positions} HAVING sum(sign) <> 0 "
        f"ORDER BY {duration_positions} "
        f"ON CONFLICT ({duration_key}) DO UPDATE SET n = r.n + excluded.n"
    )
    return [hours, durations]


def _shard_function() -> str:
    """``inbox_rollup_shard()``: a shard no other transaction is writing, if there is one.

    Counters are split into ``SHARDS`` rows so that concurrent writers need not queue on one
    row, but a shard picked by backend pid alone is shared by two writers one time in
    ``SHARDS``, and then the second waits for the first to commit: a webhook's status update
    behind a long transaction (a campaign's messages, a slow batch). So a writer takes the
    first shard whose transaction-scoped advisory lock is free, starting from its pid's (its
    own, held from its earlier statements, is free to it again), and waits only when every
    shard is taken — as every writer did before."""
    return (
        f"CREATE OR REPLACE FUNCTION {TABLE}_rollup_shard() RETURNS int "
        "LANGUAGE plpgsql AS $$\nDECLARE\n"
        f"  first int := pg_backend_pid() % {SHARDS};\n"
        "BEGIN\n"
        f"  FOR i IN 0..{SHARDS - 1} LOOP\n"
        f"    IF pg_try_advisory_xact_lock({SHARD_LOCK}, (first + i) % {SHARDS}) THEN\n"
        f"      RETURN (first + i) % {SHARDS};\n"
        "    END IF;\n"
        "  END LOOP;\n"
        "  RETURN first;\n"
        "END $$"
    )


def _function(event: str, old: str | None, new: str | None) -> str:
    rows = new or old
    body = ";\n  ".join(_upserts(old, new, "my_shard"))
    return (
        f"CREATE OR REPLACE FUNCTION {TABLE}_rollup_{event}() RETURNS trigger "
        "LANGUAGE plpgsql AS $$\nDECLARE\n  my_shard int;\nBEGIN\n"
        f"  IF NOT EXISTS (SELECT 1 FROM {rows}) THEN RETURN NULL; END IF;\n"
        f"  my_shard := {TABLE}_rollup_shard();\n"
        f"  {body};\n  RETURN NULL;\nEND $$"
    )


_TRIGGERS = {
    # event: (old transition table, new transition table)
    "insert": (None, "new_rows"),
    "update": ("old_rows", "new_rows"),
    "delete": ("old_rows", None),
}


def _install_statements() -> list[str]:
    # Room on each page for the new version of a row: counters change in place (HOT updates,
    # no index entry written), as no counter is indexed.
    statements = [f"ALTER TABLE {table} SET (fillfactor = 70)" for table in (HOURS, DURATIONS)]
    statements.append(_shard_function())
    for event, (old, new) in _TRIGGERS.items():
        referencing = " ".join(
            f"{kind} TABLE AS {name}" for kind, name in (("OLD", old), ("NEW", new)) if name
        )
        statements.append(_function(event, old, new))
        statements.append(f"DROP TRIGGER IF EXISTS {TABLE}_rollup_{event} ON {TABLE}")
        statements.append(
            f"CREATE TRIGGER {TABLE}_rollup_{event} AFTER {event.upper()} ON {TABLE} "
            f"REFERENCING {referencing} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {TABLE}_rollup_{event}()"
        )
    return statements


def install(connection: BaseDatabaseWrapper) -> None:
    """Create (or re-create) the trigger functions and triggers; idempotent. PostgreSQL only."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for statement in _install_statements():
            cursor.execute(statement)


def remove(connection: BaseDatabaseWrapper) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for event in _TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_rollup_{event} ON {TABLE}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_rollup_{event}()")
        cursor.execute(f"DROP FUNCTION IF EXISTS {TABLE}_rollup_shard()")


def rebuild(connection: BaseDatabaseWrapper) -> None:
    """Recount the rollup from the messages, set-based (a migration, ``rebuild_delivery_rollup``).

    Messages are locked against writers meanwhile (``SHARE`` mode: readers go on), so no
    trigger adds to rows the recount is replacing."""
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN SHARE MODE")
        cursor.execute(f"TRUNCATE {HOURS}, {DURATIONS}")
        for statement in _upserts(None, TABLE, "0"):
            cursor.execute(statement)


def totals(connection: BaseDatabaseWrapper) -> dict[str, object]:
    """A fingerprint of the rollup (its non-zero sums, shards merged) and the messages counted:
    equal fingerprints, equal rollups."""
    key = ", ".join(_KEY)
    sums = "sum(n), sum(n_delivered_at), sum(n_read_at)"
    queries = {
        "hours": f"SELECT concat_ws('|', {key}, status, error_code, {sums}) AS r FROM {HOURS} "
        f"GROUP BY {key}, status, error_code HAVING sum(n) <> 0 OR sum(n_delivered_at) <> 0 "
        "OR sum(n_read_at) <> 0",
        "bins": f"SELECT concat_ws('|', {key}, measure, bin, sum(n)) AS r FROM {DURATIONS} "
        f"GROUP BY {key}, measure, bin HAVING sum(n) <> 0",
    }
    found: dict[str, object] = {}
    with connection.cursor() as cursor:
        for name, rows in queries.items():
            cursor.execute(
                f"SELECT count(*), md5(string_agg(r, ',' ORDER BY r)) FROM ({rows}) AS t"
            )
            found[name], found[f"{name}_md5"] = cursor.fetchone()
        cursor.execute(f"SELECT COALESCE(sum(n), 0) FROM {HOURS} WHERE NOT daily")
        found["messages"] = int(cursor.fetchone()[0])
    return found
