"""Campaign creation rate (DESIGN §16, issue #15): recipients accepted per second by the create
service, then messages materialised per second by the worker's batch loop, on PostgreSQL.

    python bench/campaigns.py [--recipients 10000 100000] [--batch 1000] [--existing 0.5]

Recreates the database ``tickmark_bench_campaigns`` (``BENCH_DATABASE_URL``), creates one
WhatsApp inbox and, for each size, a campaign of that many recipients (a template with two
parameters each, a ``customer_message_id`` on every other one; ``--existing`` of the contacts
already known from earlier conversations). It times ``campaign_create`` (the recipient checks and
the stored batches: what the API answers after) and then ``batch_materialise`` until the campaign
is fully materialised (contacts, conversations, messages, send tasks, counts: what the worker
does), in this process, without HTTP; then, as a yardstick measured in the same conditions,
``--baseline`` messages created one by one through ``message_create_outgoing`` (the path of
``POST /api/v1/messages`` without HTTP). Prints one JSON line per size and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_setup, recreate_database  # noqa: E402

DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tickmark_bench_campaigns"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch", type=int, default=0, help="recipients per batch (default: ours)")
    parser.add_argument("--existing", type=float, default=0.5, help="share of known contacts")
    parser.add_argument(
        "--baseline",
        type=int,
        default=300,
        help="also create this many messages one by one (message_create_outgoing), same run",
    )
    args = parser.parse_args()

    recreate_database(DB_URL)
    django_setup(DB_URL, REDIS_URL)
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inbox.models import Account, Contact, Inbox, Message
    from statuses import campaign_counts
    from statuses.campaigns import create, materialise
    from statuses.campaigns.recipients import Recipient

    call_command("migrate", verbosity=0)
    if args.batch:
        create.BATCH = args.batch
    account = Account.objects.create(name="Bench")
    inbox = Inbox.objects.create(
        account=account,
        name="WhatsApp",
        channel_type="whatsapp_cloud",
        config={"phone_number_id": "1", "access_token": "t", "app_secret": "s"},
    )
    template = {"name": "order_shipped", "language": {"code": "en_US"}}
    rows = []
    for run, size in enumerate(args.recipients):
        base = run * 1_000_000
        known = int(size * args.existing)
        Contact.objects.bulk_create(
            (
                Contact(account=account, inbox=inbox, address=f"+1{base + i:010d}")
                for i in range(known)
            ),
            batch_size=5000,
        )
        recipients = [
            Recipient(
                i, f"+1{base + i:010d}", [f"Name {i}", f"A-{i}"], f"r{run}-{i}" if i % 2 else None
            )
            for i in range(size)
        ]
        started = time.perf_counter()
        campaign, rejected = create.campaign_create(
            account=account,
            inbox=inbox,
            name=f"bench {size}",
            recipients=recipients,
            template=template,
        )
        accepted_in = time.perf_counter() - started
        assert not rejected, rejected[:3]

        with CaptureQueriesContext(connection) as first:
            materialise.batch_materialise(campaign.id)
        started = time.perf_counter()
        while materialise.batch_materialise(campaign.id) == "batch":
            pass
        rest = time.perf_counter() - started
        first_batch = create.BATCH if size > create.BATCH else size
        per_second = (size - first_batch) / rest if rest else float("inf")
        made = Message.objects.filter(campaign=campaign).count()
        assert made == size, (made, size)
        assert campaign_counts.counts([campaign.id])[campaign.id]["QUEUED"] == size
        row = {
            "recipients": size,
            "batch": create.BATCH,
            "known_contacts": known,
            "accept_s": round(accepted_in, 3),
            "accepted_per_s": round(size / accepted_in),
            "materialise_s": round(rest, 3),
            "materialised_per_s": round(per_second),
            "statements_per_batch": len(first.captured_queries),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)

    if args.baseline:
        from statuses import outbound

        started = time.perf_counter()
        for i in range(args.baseline):
            outbound.message_create_outgoing(
                account=account, inbox=inbox, to=f"+1{9_000_000_000 + i:010d}", template=template
            )
        one_by_one = args.baseline / (time.perf_counter() - started)
        row = {"baseline_messages": args.baseline, "one_by_one_per_s": round(one_by_one)}
        print(json.dumps(row), flush=True)
        print(f"\nOne by one (message_create_outgoing, same run): {one_by_one:,.0f} messages/s")
    print("\n| recipients | batch | accept | accepted/s | materialise | messages/s | statements |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['recipients']:,} | {r['batch']:,} | {r['accept_s']:.2f} s "
            f"| {r['accepted_per_s']:,} | {r['materialise_s']:.2f} s "
            f"| **{r['materialised_per_s']:,}** | {r['statements_per_batch']} |"
        )


if __name__ == "__main__":
    main()
