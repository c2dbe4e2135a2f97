"""Time for a campaign's queued messages to reach SENT at an inbox's send rate (issue #15).

    python bench/campaign_send.py [--messages 10000] [--rate 500] [--workers 1 2]

For each worker count: a fresh PostgreSQL database (``BENCH_DATABASE_URL``), one WhatsApp Cloud
inbox with ``max_send_rate = --rate`` pointed at a local fake of the Cloud API send endpoint
(``tests/fakes/counting_whatsapp.py``, in this process) that timestamps every send, N queued
template messages with their send tasks at ``CAMPAIGN_PRIORITY`` inserted in bulk
(``tests/fakes/queued_sends.py``), then that many ``manage.py worker`` processes. The clock runs
from the first send the fake receives to the moment the last message is SENT in the database
(worker start-up is not counted). The figure is the achieved rate against the configured one,
and the most sends the fake saw in any one second (the limiter's bound: rate + burst).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_setup, recreate_database  # noqa: E402

DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickmark_bench_send"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
WORK = ROOT / "var" / "bench"


def run(messages: int, rate: float, workers: int) -> dict:
    from django.core.management import call_command
    from django.db import connections

    from inbox.models import Account, Inbox, Message
    from statuses import sendrate
    from statuses.machine import Status
    from tests.fakes.counting_whatsapp import CountingWhatsApp
    from tests.fakes.queued_sends import queue_campaign_sends

    connections.close_all()
    recreate_database(DB_URL)
    call_command("migrate", verbosity=0)
    provider = CountingWhatsApp()
    inbox = Inbox.objects.create(
        account=Account.objects.create(name="Bench"),
        name="WA",
        channel_type="whatsapp_cloud",
        max_send_rate=rate,
        config={
            "phone_number_id": "1",
            "access_token": "x",
            "app_secret": "s",
            "api_base_url": provider.url,
        },
    )
    started = time.perf_counter()
    queue_campaign_sends(inbox, messages)
    queued_in = time.perf_counter() - started
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "TICKMARK_ALLOW_PRIVATE_URLS": "1",
        "LOG_LEVEL": "WARNING",
        "SWEEP_INTERVAL": "0",
        # The workers pool their connections as in production (only this script's own
        # connection must not be pooled: it drops the database between runs).
        "DB_POOL": "1",
    }
    WORK.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--interval", "0.05", "--no-startup-delay"],
            cwd=ROOT,
            env=env,
            stdout=(WORK / f"campaign-worker-{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(workers)
    ]
    try:
        sent = Message.objects.filter(inbox=inbox, status=Status.SENT)
        deadline = time.monotonic() + max(600.0, 3 * messages / rate)
        while sent.count() < messages:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {sent.count()} of {messages} sent")
            time.sleep(0.2)
        done = time.time()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    times = provider.times()
    provider.close()
    elapsed = done - times[0]
    return {
        "messages": messages,
        "workers": workers,
        "configured_rate": rate,
        "burst": sendrate.burst_of(rate),
        "queued_in_s": round(queued_in, 2),
        "to_sent_s": round(elapsed, 2),
        "achieved_rate": round(messages / elapsed, 1),
        "provider_rate": round((len(times) - 1) / (times[-1] - times[0]), 1),
        "most_in_one_second": provider.most_in_any_second(),
        "provider_sends": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    os.environ["DB_POOL"] = "0"  # the database is dropped between runs: no pooled connections
    django_setup(DB_URL, REDIS_URL)
    results = [run(args.messages, args.rate, workers) for workers in args.workers]
    for result in results:
        print(json.dumps(result), flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "campaign_send.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
