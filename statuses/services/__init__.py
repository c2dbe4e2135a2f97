"""The only code that writes a message's status (DESIGN §3, §5).

Every write follows one path: lock the affected messages in a fixed order, store the new events
once each (dedupe key, ``ON CONFLICT``), re-merge the current attempt's full event set with the
pure merge rule, write back what changed, and publish (``statuses.publish``): the integrator
outbox in the transaction, the broadcast after commit. The number of SQL statements is
constant per batch, whatever its size.

One module per job: ``apply`` (provider status updates), ``watermarks``, ``reports`` (send
results, reports about a known message, new attempts), ``merge`` (the shared write path),
``rows`` (what it locks and stores) and ``sql`` (the PostgreSQL/SQLite bulk statements).
Callers import the names below from ``statuses.services``.
"""

from statuses.events import StatusChange
from statuses.services.apply import messages_prelock, status_updates_apply
from statuses.services.reports import (
    message_record_send_result,
    message_start_attempt,
    message_status_report,
)
from statuses.services.rows import (
    LOCKED_FIELDS,
    MERGED_FIELDS,
    ApplyResult,
    deliveries_store_and_find,
)
from statuses.services.watermarks import _provider_time, watermarks_apply

__all__ = [
    "LOCKED_FIELDS",
    "MERGED_FIELDS",
    "ApplyResult",
    "StatusChange",
    "_provider_time",
    "deliveries_store_and_find",
    "message_record_send_result",
    "message_start_attempt",
    "message_status_report",
    "messages_prelock",
    "status_updates_apply",
    "watermarks_apply",
]
