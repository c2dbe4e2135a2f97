"""Failed-message triage: resend, in bulk, the messages whose error a resend can fix."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from inbox.exceptions import InboxError
from inbox.models import Account, Message
from statuses import errors, outbound
from statuses.machine import Status

MAX_BULK = 200


@dataclass(frozen=True)
class BulkResend:
    resent: int
    skipped: int  # not failed any more, another account's, or an error a resend cannot fix


def messages_resend_bulk(*, account: Account, message_ids: Iterable[uuid.UUID]) -> BulkResend:
    """Resend each failed/expired message of ``account`` whose error the catalogue marks as
    worth retrying (``statuses.errors.resend_helps``); one attempt each, like the Resend button.

    Each resend is its own transaction: one message that cannot be resent (someone resent it
    meanwhile) does not hold back the others.
    """
    wanted = list(dict.fromkeys(message_ids))[:MAX_BULK]
    messages = Message.objects.filter(
        account=account,
        id__in=wanted,
        direction=Message.Direction.OUTGOING,
        status__in=(Status.FAILED, Status.EXPIRED),
    )
    resent = 0
    for message in messages:
        code = message.error_code or ("expired" if message.status == Status.EXPIRED else "")
        if not errors.resend_helps(message.channel_type, code):
            continue
        try:
            outbound.message_resend(message=message)
        except InboxError:
            continue
        resent += 1
    return BulkResend(resent=resent, skipped=len(wanted) - resent)
