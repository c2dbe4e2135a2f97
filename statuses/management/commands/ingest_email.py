"""``python manage.py ingest_email --inbox ID < message.eml``

Reads one raw mail from stdin (typically a bounce the MTA pipes in, e.g. from an alias
``bounces: "|/srv/tickmark/manage.py ingest_email --inbox …"``) and runs it through the same
path as the email webhook: recorded as a webhook delivery, parsed, matched to our message,
applied. Prints what happened; exits non-zero when the mail was refused or unreadable.
"""

from __future__ import annotations

import json
import sys
import uuid

from django.core.management.base import BaseCommand, CommandError

from inbox.models import Inbox
from statuses import ingestion
from statuses.models import WebhookDelivery


class Command(BaseCommand):
    help = "Ingest one raw email (a bounce / DSN) from stdin into an email inbox."
    stealth_options = ("stdin",)  # call_command(..., stdin=BytesIO(...)) in tests

    def add_arguments(self, parser):
        parser.add_argument("--inbox", required=True, help="id (UUID) of the email inbox")

    def handle(self, *args, **options):
        try:
            inbox_id = uuid.UUID(str(options["inbox"]))
        except ValueError as exc:
            raise CommandError(
                f"--inbox must be an inbox id (UUID), not {options['inbox']!r}"
            ) from exc
        inbox = Inbox.objects.filter(id=inbox_id).first()
        if inbox is None:
            raise CommandError(f"no inbox {inbox_id}")
        if inbox.channel_type != "email":
            raise CommandError(
                f"inbox {inbox_id} is a {inbox.channel_type} inbox, not an email inbox"
            )

        raw = _read_stdin(options.get("stdin") or sys.stdin)
        outcome, request = ingestion.raw_email_receive(inbox=inbox, raw=raw)
        delivery = (
            WebhookDelivery.objects.filter(inbox=inbox, received_at=request.received_at)
            .order_by("-id")
            .first()
        )
        if outcome.http_status >= 400:
            detail = _error_message(outcome.body) or (delivery.detail if delivery else "")
            raise CommandError(f"refused ({outcome.http_status}): {detail}")

        events = list(delivery.events.order_by("id")) if delivery else []
        self.stdout.write(
            f"accepted: delivery #{delivery.id if delivery else '?'}, {len(events)} status event(s)"
        )
        if not events:
            self.stdout.write("the mail is not a report about one of our messages: nothing changed")
        for event in events:
            target = event.message_id or f"parked ({event.provider_message_id})"
            line = f"  {event.raw_status or '?'} → {event.status or 'unrecognised'} for {target}"
            if event.error_code:
                line += f": {event.error_code} {event.error_title}"
            if event.error_detail:
                line += f" — {event.error_detail}"
            line += f" [{event.outcome}]"
            self.stdout.write(line)


def _read_stdin(stream) -> bytes:
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ""
