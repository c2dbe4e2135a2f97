"""Delivery analytics in-process: ``inbox.analytics.delivery_stats`` per query shape, timed
without HTTP, optionally against another version of ``inbox/analytics.py`` (alternating, so that
both see the same machine load) and checking that both give the same answer.

    python bench/analytics_compare.py [--repeat 10] [--against /old/checkout/inbox/analytics.py]

Runs on ``bench/analytics.py``'s seeded database (``BENCH_DATABASE_URL``) and its shapes,
read-only. A version of ``inbox/analytics.py`` from before campaigns is timed on the shapes
without a campaign only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.analytics import DB_URL, REDIS_URL, bench_campaign, quantile, shapes  # noqa: E402
from bench.common import django_setup  # noqa: E402


def _load(path: str, name: str = "analytics_against") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    sql = Path(path).with_name("analytics_sql.py")
    if name == "analytics_against" and sql.exists():  # that version's statements too
        module.analytics_sql = _load(str(sql), "analytics_sql_against")
    return module


def _time(module: ModuleType, account: Any, query: Any) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = module.delivery_stats(account=account, query=query)
    return (time.perf_counter() - started) * 1000, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--against", help="another version of inbox/analytics.py")
    args = parser.parse_args()
    django_setup(DB_URL, REDIS_URL)
    from django.http import QueryDict

    from inbox import analytics
    from inbox.api.analytics import parse_query
    from inbox.models import Account, Inbox

    account = Account.objects.get(name="Bench")
    inbox_id = str(Inbox.objects.get(account=account, channel_type="whatsapp_cloud").id)
    versions = {"this": analytics}
    if args.against:
        versions["against"] = _load(args.against)
    cases = shapes(inbox_id, bench_campaign())
    _run(cases, versions, account, args.repeat, parse_query, QueryDict)


def _run(cases, versions, account, repeat, parse_query, query_dict) -> None:
    print(f"{'shape':34} {'version':8} {'messages':>9}  {'p50 ms':>7} {'p90 ms':>7}")
    for name, params in cases:
        query = parse_query(query_dict(params), account)
        # Only this version knows campaigns.
        timed = {"this": versions["this"]} if query.campaign is not None else versions
        times: dict[str, list[float]] = {v: [] for v in timed}
        answers: dict[str, dict] = {}
        for version, module in timed.items():  # warm up
            answers[version] = module.delivery_stats(account=account, query=query)
        for _ in range(repeat):
            for version, module in timed.items():
                elapsed, _answer = _time(module, account, query)
                times[version].append(elapsed)
        total = answers["this"]["totals"]["total"]
        for version in timed:
            p50, p90 = statistics.median(times[version]), quantile(times[version], 0.9)
            print(f"{name:34} {version:8} {total:>9,}  {p50:7.1f} {p90:7.1f}", flush=True)
        if "against" in timed and answers["against"] != answers["this"]:
            print(f"  !! answers differ for {name}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    main()
