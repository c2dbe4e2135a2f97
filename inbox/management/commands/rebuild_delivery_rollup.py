"""Recount the delivery rollup from the messages (inbox/rollup.py): after restoring a dump made
without triggers, after adding a dimension, or to check the rollup (``--check``)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from inbox import rollup


class Command(BaseCommand):
    help = "Recount the delivery analytics rollup from the messages (PostgreSQL; set-based SQL)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="recount in a transaction that is rolled back; fail if the rollup differed",
        )

    def handle(self, *args, check: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The rollup exists on PostgreSQL only (SQLite reads the messages).")
        with transaction.atomic():
            before = rollup.totals(connection)
            rollup.install(connection)
            rollup.rebuild(connection)
            after = rollup.totals(connection)
            if check:
                transaction.set_rollback(True)
        if check and before != after:
            raise CommandError(f"The rollup differed from a recount: {before} != {after}.")
        self.stdout.write(f"Rollup {'checked' if check else 'rebuilt'}: {after}.")
