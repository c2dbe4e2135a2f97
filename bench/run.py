"""Tickmark benchmarks against PostgreSQL with daphne (DESIGN §12).

Each scenario is compared with a baseline measured in the same run (the machine is shared and
noisy: read the ratios and medians, not the absolute numbers).

    python bench/run.py [--duration 10] [--concurrency 16] [--messages 1000000]

Scenarios:
  baseline   GET /healthz — what this daphne serves for a view that does nothing
  single     signed single-status WhatsApp webhooks (each one changes a message)
  batched    signed WhatsApp webhooks of 1,000 statuses each → status events per second
  tick       webhook → agent broadcast latency over Redis at half the single-status rate
  lookup     GET /api/v1/messages/<id> with --messages messages stored
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PORT = int(os.environ.get("BENCH_PORT", "8123"))
BASE = f"http://127.0.0.1:{PORT}"
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickmark_bench")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
APP_SECRET = "bench-app-secret"
DAPHNE_LOG = ROOT / "var" / "bench-daphne.log"
T0 = 1767225600


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, latencies: list[float], seconds: float, units: int = 1) -> dict:
    count = len(latencies)
    return {
        "scenario": name,
        "requests": count,
        "req_per_s": count / seconds if seconds else 0.0,
        "units_per_s": count * units / seconds if seconds else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


# --- setup ----------------------------------------------------------------------------------


def django_setup() -> None:
    os.environ["DATABASE_URL"] = DB_URL
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def recreate_database() -> None:
    import psycopg

    admin_url = DB_URL.rsplit("/", 1)[0] + "/postgres"
    name = DB_URL.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(messages: int) -> dict:
    """Create an account, an inbox and `messages` outgoing messages with provider ids, in SQL."""
    from django.core.management import call_command
    from django.db import connection

    from inbox.models import Account, ApiKey, Contact, Conversation, Inbox

    call_command("migrate", verbosity=0)
    account = Account.objects.create(name="Bench")
    inbox = Inbox.objects.create(
        account=account,
        name="WA",
        channel_type="whatsapp_cloud",
        config={
            "phone_number_id": "1",
            "access_token": "x",
            "app_secret": APP_SECRET,
            "verify_token": "v",
        },
    )
    contact = Contact.objects.create(account=account, inbox=inbox, address="+15550001111")
    conversation = Conversation.objects.create(account=account, inbox=inbox, contact=contact)
    raw_key = ApiKey.generate()
    key = ApiKey(account=account, name="bench")
    key.set_key(raw_key)
    key.save()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_message (id, account_id, inbox_id, conversation_id, channel_type,
                direction, to_address, content, provider_message_id, attempt, status,
                error_code, error_title, error_detail, queued_at, sent_at, status_updated_at,
                version, created_at, updated_at)
            SELECT gen_random_uuid(), %s, %s, %s, 'whatsapp_cloud', 'outgoing', '+15550001111',
                'bench ' || g, 'wamid.bench.' || g, 1, 'sent', '', '', '', now(), now(), now(),
                1, now() - (g || ' seconds')::interval, now()
            FROM generate_series(1, %s) AS g
            """,
            [account.id, inbox.id, conversation.id, messages],
        )
        cursor.execute("ANALYZE inbox_message")
    print(f"seeded {messages:,} messages in {time.perf_counter() - started:.1f}s", flush=True)
    return {
        "account_id": account.id,
        "inbox_id": str(inbox.id),
        "api_key": raw_key,
        "messages": messages,
    }


def existing_context() -> dict:
    from inbox.models import Account, ApiKey, Inbox, Message

    account = Account.objects.get(name="Bench")
    raw_key = ApiKey.generate()
    key = ApiKey(account=account, name="bench")
    key.set_key(raw_key)
    key.save()
    return {
        "account_id": account.id,
        "inbox_id": str(Inbox.objects.get(account=account).id),
        "api_key": raw_key,
        "messages": Message.objects.filter(account=account).count(),
    }


def start_daphne() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": BASE,
        "LOG_LEVEL": "WARNING",
        "DB_POOL_MAX": "20",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(PORT),
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: a pipe nobody drains fills up and then blocks the server.
        stderr=DAPHNE_LOG.open("wb"),
    )
    for _ in range(100):
        try:
            if httpx.get(f"{BASE}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("daphne did not start: " + DAPHNE_LOG.read_text()[-2000:])


# --- load -----------------------------------------------------------------------------------


def signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


def whatsapp_body(statuses: list[tuple[str, str, int]]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "1"},
        "statuses": [
            {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": "15550001111"}
            for wamid, status, ts in statuses
        ],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


async def closed_loop(make_request, duration: float, concurrency: int) -> tuple[list[float], float]:
    """Run `concurrency` workers that each send requests back to back for `duration` seconds."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=BASE, limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + duration
        counter = iter(range(10**9))

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                method, url, body, headers = make_request(next(counter))
                started = time.perf_counter()
                try:
                    response = await client.request(method, url, content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                if response.status_code >= 300:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if errors:
        print(f"  ! {errors} failed or non-2xx answers", flush=True)
    return latencies, elapsed


def run_baseline(args) -> dict:
    lat, secs = asyncio.run(
        closed_loop(lambda i: ("GET", "/healthz", None, {}), args.duration, args.concurrency)
    )
    return summary("baseline (no-op view)", lat, secs)


def run_single(args, ctx, offset: int) -> dict:
    path = f"/webhooks/whatsapp_cloud/{ctx['inbox_id']}/"
    statuses = ("delivered", "read")

    def make(i: int):
        n = offset + i
        message = n // 2 % ctx["messages"] + 1
        body = whatsapp_body([(f"wamid.bench.{message}", statuses[n % 2], T0 + n)])
        return "POST", path, body, signed(body)

    lat, secs = asyncio.run(closed_loop(make, args.duration, args.concurrency))
    return summary("single-status webhook", lat, secs)


def run_batched(args, ctx, offset: int) -> dict:
    path = f"/webhooks/whatsapp_cloud/{ctx['inbox_id']}/"
    size = 1000

    def make(i: int):
        first = offset + i * size // 2
        rows = []
        for k in range(size // 2):
            message = (first + k) % ctx["messages"] + 1
            rows += [
                (f"wamid.bench.{message}", "delivered", T0 + 1),
                (f"wamid.bench.{message}", "read", T0 + 2),
            ]
        body = whatsapp_body(rows)
        return "POST", path, body, signed(body)

    lat, secs = asyncio.run(closed_loop(make, args.duration, max(2, args.concurrency // 4)))
    return summary("batched webhook (1,000 statuses)", lat, secs, units=size)


def run_tick(args, ctx, rate: float, offset: int) -> dict:
    """Post single-status webhooks at `rate`/s and time each until its broadcast arrives."""
    from channels.layers import get_channel_layer

    from channels_app import groups

    path = f"/webhooks/whatsapp_cloud/{ctx['inbox_id']}/"
    latencies: list[float] = []

    async def main() -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(groups.account(ctx["account_id"]), channel)
        sent_at: dict[str, float] = {}

        async def listen() -> None:
            while True:
                try:
                    message = await layer.receive(channel)
                except Exception as exc:  # e.g. a Redis read timeout: keep listening
                    print(f"  ! listener: {exc!r}", flush=True)
                    continue
                now = time.perf_counter()
                for event in message.get("events", []):
                    started = sent_at.pop(event.get("message_id"), None)
                    if started is not None:
                        latencies.append(now - started)

        listener = asyncio.create_task(listen())
        ids = await asyncio.to_thread(_message_ids, ctx, offset, int(rate * args.duration))
        async with httpx.AsyncClient(base_url=BASE, timeout=30) as client:
            interval = 1 / rate
            tasks = []
            start = time.perf_counter()
            for n, (message_id, wamid) in enumerate(ids):
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = whatsapp_body([(wamid, "delivered", T0 + 5)])
                sent_at[message_id] = time.perf_counter()
                tasks.append(
                    asyncio.create_task(client.post(path, content=body, headers=signed(body)))
                )
            answers = await asyncio.gather(*tasks, return_exceptions=True)
            failed = [a for a in answers if isinstance(a, Exception) or a.status_code != 200]
            if failed:
                print(f"  ! {len(failed)} webhooks failed: {failed[:3]!r}", flush=True)
        await asyncio.sleep(1)
        listener.cancel()
        await layer.group_discard(groups.account(ctx["account_id"]), channel)

    asyncio.run(main())
    result = summary(f"webhook → tick broadcast at {rate:.0f}/s", latencies, args.duration)
    result["req_per_s"] = rate
    return result


def _message_ids(ctx, offset: int, count: int) -> list[tuple[str, str]]:
    from inbox.models import Message

    # messages no earlier scenario touched, so each webhook really changes a tick
    rows = Message.objects.filter(status="sent").order_by("-created_at")[:count]
    return [(str(mid), wamid) for mid, wamid in rows.values_list("id", "provider_message_id")]


def run_lookup(args, ctx, concurrency: int) -> dict:
    from inbox.models import Message

    ids = [str(i) for i in Message.objects.order_by("?").values_list("id", flat=True)[:2000]]
    headers = {"Authorization": f"Bearer {ctx['api_key']}"}

    def make(i: int):
        return "GET", f"/api/v1/messages/{random.choice(ids)}", None, headers

    lat, secs = asyncio.run(closed_loop(make, args.duration, concurrency))
    return summary(f"message lookup, {concurrency} conn ({ctx['messages']:,} stored)", lat, secs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench.json"))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only baseline and single-status webhooks, reusing a seeded bench database",
    )
    args = parser.parse_args()

    if args.quick:
        django_setup()
        ctx = existing_context()
    else:
        recreate_database()
        django_setup()
        ctx = seed(args.messages)
    daphne = start_daphne()
    results = []

    def note(result: dict) -> dict:
        print(f"  {result['scenario']}: {result['req_per_s']:.1f} req/s", flush=True)
        return result

    try:
        results.append(note(run_baseline(args)))
        results.append(note(single := run_single(args, ctx, offset=random.randrange(10**6))))
        results.append(note(run_baseline(args)))  # again: the machine is noisy
        if args.quick:
            return report(args, results, single)
        results.append(note(run_batched(args, ctx, offset=200_000)))
        results.append(
            note(run_tick(args, ctx, rate=max(1.0, single["req_per_s"] / 2), offset=600_000))
        )
        results.append(note(run_lookup(args, ctx, concurrency=1)))
        results.append(note(run_lookup(args, ctx, concurrency=args.concurrency)))
    finally:
        daphne.send_signal(signal.SIGINT)
        try:
            daphne.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daphne.kill()
        problems = [
            line for line in DAPHNE_LOG.read_text(errors="replace").splitlines() if "ERROR" in line
        ]
        if problems:
            print(f"daphne logged {len(problems)} errors, e.g.:\n" + "\n".join(problems[:5]))

    report(args, results, single)


def report(args, results: list[dict], single: dict) -> None:
    baseline = statistics.median(
        [r["req_per_s"] for r in results if r["scenario"].startswith("baseline")]
    )
    print(
        f"\n{'scenario':44} {'req/s':>9} {'units/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
    )
    for r in results:
        print(
            f"{r['scenario']:44} {r['req_per_s']:9.1f} {r['units_per_s']:10.1f} "
            f"{r['p50_ms']:8.1f} {r['p90_ms']:8.1f} {r['p99_ms']:8.1f}"
        )
    single_ratio = single["req_per_s"] / baseline if baseline else 0
    print(f"\nsingle-status webhooks / no-op baseline: {single_ratio:.0%} (target ≥ 60%)")
    Path(args.output).parent.mkdir(exist_ok=True)
    Path(args.output).write_text(
        json.dumps({"results": results, "single_vs_baseline": single_ratio}, indent=2)
    )
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
