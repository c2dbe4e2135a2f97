"""A campaign's counts by status, kept in the transaction of every change (DESIGN §16).

The status writers publish each change (``statuses.publish.status_changes``), which hands the
changes here: one ``INSERT`` of (campaign, status, ±n) rows per transaction for all the
campaigns it touched, nothing when none. Rows are only ever inserted, so two transactions
changing the same campaign never wait on each other; ``compact`` folds a campaign's rows into
one per status now and then (the campaign sweep), so reading stays one small indexed sum.
Messages are never loaded to count them; ``recount`` (tests, admin repair) is one query.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable

from django.db import connection
from django.db.models import Count, Sum

from inbox.models import CampaignCount, Message
from statuses.events import StatusChange
from statuses.machine import Status


def status_changes_count(changes: Iterable[StatusChange]) -> None:
    """Record the count deltas of ``changes`` (one statement, none without campaign messages)."""
    deltas: Counter[tuple[uuid.UUID, str]] = Counter()
    for change in changes:
        if change.campaign_id is None or change.previous_status == change.status:
            continue
        deltas[(change.campaign_id, change.previous_status)] -= 1
        deltas[(change.campaign_id, change.status)] += 1
    _insert(deltas)


def messages_created_count(campaign_id: uuid.UUID, n: int) -> None:
    """Count ``n`` new queued messages of a campaign."""
    _insert(Counter({(campaign_id, Status.QUEUED.value): n}))


def counts(campaign_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """{campaign id: {STATUS: count}} for every status, in one query."""
    ids = list(campaign_ids)
    result = {cid: dict.fromkeys((s.upper() for s in Status.values), 0) for cid in ids}
    rows = (
        CampaignCount.objects.filter(campaign_id__in=ids)
        .values_list("campaign_id", "status")
        .annotate(n=Sum("delta"))
        .order_by()
    )
    for campaign_id, status, n in rows:
        result[campaign_id][status.upper()] = int(n)
    return result


def recount(campaign_id: uuid.UUID) -> dict[str, int]:
    """The counts straight from the messages (one indexed query): what ``counts`` must equal."""
    result = dict.fromkeys((s.upper() for s in Status.values), 0)
    rows = (
        Message.objects.filter(campaign_id=campaign_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, n in rows:
        result[status.upper()] = n
    return result


def compact(campaign_id: uuid.UUID) -> None:
    """Fold a campaign's delta rows into one row per status (one statement on PostgreSQL).

    Rows committed while this runs are not in its snapshot, so they are neither deleted nor
    summed: they stay as they are, and the total is unchanged.
    """
    table = CampaignCount._meta.db_table
    if connection.vendor == "postgresql":
        sql = (
            f"WITH gone AS (DELETE FROM {table} WHERE campaign_id = %s "  # noqa: S608 (our table)
            "RETURNING campaign_id, status, delta) "
            f"INSERT INTO {table} (campaign_id, status, delta) "
            "SELECT campaign_id, status, sum(delta) FROM gone GROUP BY campaign_id, status "
            "HAVING sum(delta) <> 0"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [campaign_id])
        return
    # SQLite (the embedded demo): one writer, so read, delete and insert cannot interleave.
    summed = counts([campaign_id])[campaign_id]
    CampaignCount.objects.filter(campaign_id=campaign_id).delete()
    CampaignCount.objects.bulk_create(
        CampaignCount(campaign_id=campaign_id, status=status.lower(), delta=n)
        for status, n in summed.items()
        if n
    )


def _insert(deltas: Counter[tuple[uuid.UUID, str]]) -> None:
    rows = [
        CampaignCount(campaign_id=campaign_id, status=status, delta=n)
        for (campaign_id, status), n in sorted(deltas.items())
        if n
    ]
    if rows:
        CampaignCount.objects.bulk_create(rows)
