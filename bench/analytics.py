"""Delivery analytics over a million messages (DESIGN §12, §15): GET /api/v1/analytics/delivery
through daphne, repeated, p50/p99 per query shape.

    python bench/analytics.py [--messages 1000000] [--repeat 30] [--reuse]

Seeds (in SQL, with ``generate_series``) one account with ``--messages`` outgoing messages over
the last 30 days on four inboxes (WhatsApp, SMS, Messenger, Telegram) with a realistic status mix
and provider times, plus 10 % incoming messages and a second account with 10 % as many messages
(both must be filtered out). Then starts one daphne and times each query shape with one client
connection, one request at a time (the number is the endpoint's latency, not a throughput).
``--reuse`` keeps an already seeded database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_setup, recreate_database  # noqa: E402

PORT = int(os.environ.get("BENCH_PORT", "8124"))
BASE = f"http://127.0.0.1:{PORT}"
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickmark_bench_analytics"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
LOG = ROOT / "var" / "bench-analytics-daphne.log"

CAMPAIGN = 100_000  # outgoing messages of one campaign (DESIGN §16's largest)
INBOXES = [  # (channel type, share of the messages)
    ("whatsapp_cloud", 0.55),
    ("twilio_sms", 0.25),
    ("facebook", 0.12),
    ("telegram", 0.08),
]

# One row per message: r picks the status, r2 the error code and the speeds. Shares: read 42 %,
# delivered 38 %, sent 8 %, received 1 %, queued 1 %, unknown 0.5 %, failed 7 %, expired 2 %,
# deleted 0.5 %. Time to deliver ~ 0.3 s * e^(0…4) (0.3 s … 16 s, long tail); read within 2 h.
SEED_SQL = """
INSERT INTO inbox_message (id, account_id, inbox_id, conversation_id, channel_type, direction,
    to_address, content, provider_message_id, attempt, status, error_code, error_title,
    error_detail, queued_at, sent_at, delivered_at, read_at, failed_at, status_updated_at,
    version, created_at, updated_at, origin, campaign_id)
SELECT gen_random_uuid(), %(account)s, %(inbox)s, %(conversation)s, %(channel_type)s,
    CASE WHEN g %% 10 = 0 AND %(incoming)s THEN 'incoming' ELSE 'outgoing' END,
    '+15550001111', 'bench ' || g, NULL, 1, s.status,
    CASE WHEN s.status = 'failed' THEN (ARRAY['131047','131026','130429','131048','131000'])
        [1 + floor(s.r2 * 5)::int] WHEN s.status = 'expired' THEN 'expired' ELSE '' END,
    '', '', s.created, s.sent, s.delivered, s.read,
    CASE WHEN s.status IN ('failed', 'expired') THEN s.sent + interval '3 seconds' END,
    s.created, 1, s.created, s.created, 'tickmark',
    CASE WHEN g <= %(campaign_rows)s AND NOT (g %% 10 = 0 AND %(incoming)s) THEN %(campaign)s::uuid
    END
FROM (
    SELECT g, t.r, t.r2, t.created,
        CASE WHEN t.r < 0.42 THEN 'read' WHEN t.r < 0.80 THEN 'delivered'
             WHEN t.r < 0.88 THEN 'sent' WHEN t.r < 0.89 THEN 'received'
             WHEN t.r < 0.90 THEN 'queued' WHEN t.r < 0.905 THEN 'unknown'
             WHEN t.r < 0.975 THEN 'failed' WHEN t.r < 0.995 THEN 'expired'
             ELSE 'deleted' END AS status,
        CASE WHEN t.r >= 0.89 AND t.r < 0.905 THEN NULL
             ELSE t.created + (500 + t.r2 * 1500) * interval '1 millisecond' END AS sent,
        CASE WHEN t.r < 0.80 OR t.r >= 0.995 THEN t.created + (500 + t.r2 * 1500
             + 300 * exp(t.r3 * 4)) * interval '1 millisecond' END AS delivered,
        CASE WHEN t.r < 0.42 THEN t.created + (60 + t.r3 * 7200) * interval '1 second'
             END AS read
    FROM generate_series(1, %(count)s) AS g,
        LATERAL (SELECT random() AS r, random() AS r2, random() AS r3,
                 now() - (g::float / %(count)s) * interval '30 days' AS created) AS t
) AS s
"""


def _account(name: str, messages: int, incoming: bool) -> None:
    from django.db import connection

    from inbox.models import Account, Campaign, Contact, Conversation, Inbox

    account = Account.objects.create(name=name)
    for channel_type, share in INBOXES:
        inbox = Inbox.objects.create(account=account, name=channel_type, channel_type=channel_type)
        contact = Contact.objects.create(account=account, inbox=inbox, address="+15550001111")
        conversation = Conversation.objects.create(account=account, inbox=inbox, contact=contact)
        count = round(messages * share * (10 / 9 if incoming else 1))
        # The measured account's newest CAMPAIGN outgoing WhatsApp messages are one campaign's
        # (rows g = 1… are the newest; every tenth is incoming there).
        campaign, campaign_rows = None, 0
        if incoming and channel_type == "whatsapp_cloud":
            size = min(CAMPAIGN, count * 9 // 10)
            campaign = Campaign.objects.create(
                account=account, inbox=inbox, name="bench", total=size, status="completed"
            )
            campaign_rows = size + (size - 1) // 9
        with connection.cursor() as cursor:
            cursor.execute(
                SEED_SQL,
                {
                    "account": account.id,
                    "inbox": inbox.id,
                    "conversation": conversation.id,
                    "channel_type": channel_type,
                    "count": count,
                    "incoming": incoming,
                    "campaign": campaign.id if campaign else None,
                    "campaign_rows": campaign_rows,
                },
            )


def seed(messages: int) -> None:
    from django.db import connection

    from inbox import rollup

    started = time.perf_counter()
    # Seeded without the rollup's insert trigger, then backfilled as a migration does (timed:
    # the cost of adding the rollup to a database that already holds the messages).
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE inbox_message DISABLE TRIGGER inbox_message_rollup_insert")
    _account("Bench", messages, incoming=True)
    _account("Other", messages // 10, incoming=False)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE inbox_message ENABLE TRIGGER inbox_message_rollup_insert")
    print(f"messages inserted in {time.perf_counter() - started:.1f}s", flush=True)
    backfill = time.perf_counter()
    rollup.rebuild(connection)
    print(f"rollup backfilled in {time.perf_counter() - backfill:.1f}s", flush=True)
    with connection.cursor() as cursor:
        # Vacuumed, the rollup's sums are index-only scans.
        for table in ("inbox_message", "inbox_deliveryhour", "inbox_deliveryduration"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(
            "SELECT (SELECT count(*) FROM inbox_deliveryhour), "
            "(SELECT count(*) FROM inbox_deliveryduration)"
        )
        hours, durations = cursor.fetchone()
    print(
        f"seeded in {time.perf_counter() - started:.1f}s (rollup: {hours:,} hour rows, "
        f"{durations:,} histogram rows)",
        flush=True,
    )


def api_key() -> tuple[str, str]:
    from inbox.models import Account, ApiKey, Inbox, Message

    account = Account.objects.get(name="Bench")
    raw = ApiKey.generate()
    key = ApiKey(account=account, name="bench")
    key.set_key(raw)
    key.save()
    outgoing = Message.objects.filter(account=account, direction="outgoing").count()
    print(f"{outgoing:,} outgoing messages in the measured account", flush=True)
    return raw, str(Inbox.objects.get(account=account, channel_type="whatsapp_cloud").id)


def start_daphne() -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": DB_URL,
        "REDIS_URL": REDIS_URL,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    LOG.parent.mkdir(exist_ok=True)
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
        stderr=LOG.open("wb"),
    )
    for _ in range(100):
        try:
            if httpx.get(f"{BASE}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("daphne did not start: " + LOG.read_text()[-2000:])


def bench_campaign() -> str | None:
    """The seeded campaign's id (a database seeded before campaigns has none)."""
    from inbox.models import Campaign

    campaign = Campaign.objects.filter(account__name="Bench", name="bench").first()
    if campaign is None:
        print("no campaign in this database: the campaign shapes are left out", flush=True)
        return None
    return str(campaign.id)


def shapes(inbox_id: str, campaign_id: str | None = None) -> list[tuple[str, str]]:
    """The query shapes timed: (name, query string)."""
    campaign = []
    if campaign_id:
        campaign = [
            ("campaign (all its messages)", f"since=2000-01-01T00:00:00Z&campaign={campaign_id}"),
            (
                "campaign, group_by=day",
                f"since={_days_ago(30)}&campaign={campaign_id}&group_by=day",
            ),
        ]
    return [
        ("last 7 days (default)", ""),
        ("7 days, whole hours", f"since={_days_ago(7, whole_hour=True)}"),
        ("7 days, group_by=channel", f"since={_days_ago(7)}&group_by=channel"),
        ("30 days = all messages", "since=2000-01-01T00:00:00Z"),
        ("30 days, group_by=channel", "since=2000-01-01T00:00:00Z&group_by=channel"),
        ("30 days, group_by=inbox", "since=2000-01-01T00:00:00Z&group_by=inbox"),
        ("30 days, group_by=day", f"since={_days_ago(30)}&group_by=day"),
        ("30 days, one inbox", f"since=2000-01-01T00:00:00Z&inbox={inbox_id}"),
        ("24 hours, group_by=hour", f"since={_days_ago(1)}&group_by=hour"),
        *campaign,
    ]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    if not args.reuse:
        recreate_database(DB_URL)
    django_setup(DB_URL, REDIS_URL)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not args.reuse:
        seed(args.messages)
    key, inbox_id = api_key()
    campaign_id = bench_campaign()
    daphne = start_daphne()
    rows = []
    try:
        with httpx.Client(base_url=BASE, headers={"Authorization": f"Bearer {key}"}) as client:
            for name, query in shapes(inbox_id, campaign_id):
                url = f"/api/v1/analytics/delivery?{query}"
                first = client.get(url, timeout=60)
                first.raise_for_status()
                total = first.json()["totals"]["total"]
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.get(url, timeout=60)
                    times.append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                row = (name, total, statistics.median(times), quantile(times, 0.99))
                rows.append(row)
                print(f"{name:32} {total:>9,} msgs  p50 {row[2]:7.1f} ms  p99 {row[3]:7.1f} ms")
    finally:
        daphne.terminate()
        daphne.wait(timeout=10)
    print("\n| query | messages counted | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, total, p50, p99 in rows:
        print(f"| {name} | {total:,} | {p50:.0f} | {p99:.0f} |")
    histogram_error()


def histogram_error() -> None:
    """The histogram percentiles of the whole period against exact ``percentile_cont``."""
    from datetime import UTC, datetime

    from inbox import analytics
    from inbox.models import Account

    account = Account.objects.get(name="Bench")
    query = analytics.DeliveryQuery(since=datetime(2000, 1, 1, tzinfo=UTC), until=datetime.now(UTC))
    approximate = analytics.delivery_stats(account=account, query=query)["totals"]
    limit = analytics.EXACT_PERCENTILES_UP_TO
    analytics.EXACT_PERCENTILES_UP_TO = 10**12
    try:
        exact = analytics.delivery_stats(account=account, query=query)["totals"]
    finally:
        analytics.EXACT_PERCENTILES_UP_TO = limit
    print("\nhistogram vs exact percentiles, 30 days:")
    for measure in ("time_to_deliver_ms", "time_to_read_ms"):
        for name, value in exact[measure].items():
            estimate = approximate[measure][name]
            print(
                f"  {measure} {name}: exact {value:,.1f}  histogram {estimate:,.1f}  "
                f"({(estimate - value) / value:+.2%})"
            )


def _days_ago(days: float, whole_hour: bool = False) -> str:
    from datetime import UTC, datetime, timedelta

    at = datetime.now(UTC) - timedelta(days=days)
    if whole_hour:
        at = at.replace(minute=0, second=0, microsecond=0)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    main()
