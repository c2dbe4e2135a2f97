"""What keeping the delivery rollup costs a status write, measured in PostgreSQL itself.

    python bench/rollup_cost.py [--rounds 20] [--block 25]

On a database seeded by ``bench/run.py`` (``BENCH_DATABASE_URL``, default ``tickmark_bench``),
times the statement the status service writes merged state with (one ``UPDATE … FROM unnest`` per
batch, ``statuses/services/sql.py``) plus its commit, for batches of 1 and 100 messages moving
between ``delivered`` and ``read`` (so their counts by status and their time-to-read histogram
move; time to deliver stays as it was) — with the rollup triggers enabled, then disabled, in
alternating blocks so that a shared machine's load falls on both alike. The whole-webhook figures
are bench/run.py's; this isolates the triggers' share of the database work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickmark_bench")
UPDATE = (
    "UPDATE inbox_message AS m SET status = v.status, "
    "delivered_at = COALESCE(m.delivered_at, v.at), "
    "read_at = CASE WHEN v.status = 'read' THEN v.at END, updated_at = now(), "
    "version = m.version + 1 FROM unnest(%s::uuid[], %s::varchar[], %s::timestamptz[]) "
    "AS v(id, status, at) WHERE m.id = v.id"
)
TRIGGERS = "ALTER TABLE inbox_message {} TRIGGER inbox_message_rollup_update"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block", type=int, default=25)
    args = parser.parse_args()
    with psycopg.connect(DB_URL, autocommit=True) as admin, psycopg.connect(DB_URL) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM inbox_message WHERE direction = 'outgoing' "
                "AND sent_at IS NOT NULL ORDER BY random() LIMIT 20000"
            )
        ]
        conn.commit()
        results: dict[tuple[int, bool], list[float]] = {}
        turn = 0
        try:
            for _ in range(args.rounds):
                for enabled in (True, False):
                    admin.execute(TRIGGERS.format("ENABLE" if enabled else "DISABLE"))
                    for size in (1, 100):
                        times = results.setdefault((size, enabled), [])
                        for _ in range(args.block):
                            batch = [ids[(turn + i) % len(ids)] for i in range(size)]
                            turn += size
                            status = "read" if turn % 2 else "delivered"
                            at = time.time()
                            started = time.perf_counter()
                            conn.execute(
                                UPDATE,
                                (batch, [status] * size, [_ts(at)] * size),
                            )
                            conn.commit()
                            times.append((time.perf_counter() - started) * 1000)
        finally:
            admin.execute(TRIGGERS.format("ENABLE"))
    print("| batch | rollup triggers | median ms | p90 ms |\n|---|---|---|---|")
    for (size, enabled), times in sorted(results.items(), key=lambda i: (i[0][0], not i[0][1])):
        p90 = statistics.quantiles(times, n=10)[8]
        print(
            f"| {size} | {'on' if enabled else 'off'} | {statistics.median(times):.2f} | "
            f"{p90:.2f} |"
        )
    for size in (1, 100):
        on = statistics.median(results[(size, True)])
        off = statistics.median(results[(size, False)])
        print(f"batch of {size}: the triggers add {on - off:.2f} ms ({on / off - 1:+.0%})")


def _ts(epoch: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


if __name__ == "__main__":
    main()
