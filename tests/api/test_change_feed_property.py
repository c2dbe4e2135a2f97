"""Property: whatever the interleaving of writes, commits, rollbacks and polls, a poller that
follows the feed's links ends up with exactly the table, and never sees a rolled-back write.

On PostgreSQL the writers are real concurrent transactions on their own connections (raw
psycopg), so commits happen out of write order; the poller is an API client. SQLite has one
writer at a time, so its version runs writes one after the other through the ORM.
"""

import itertools
import os
import uuid

import pytest
from django.db import connection
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from inbox.models import Account, Message
from tests.api.conftest import make_key
from tests.api.test_change_feed import sent_messages

WRITERS = 3
ROWS = 5

_write = st.tuples(st.just("write"), st.integers(0, WRITERS - 1), st.integers(0, ROWS + 2))
_end = st.tuples(st.sampled_from(["commit", "rollback"]), st.integers(0, WRITERS - 1), st.just(0))
_commit = st.tuples(st.just("commit"), st.integers(0, WRITERS - 1), st.just(0))
_insert = st.tuples(st.just("insert"), st.integers(0, WRITERS - 1), st.just(0))
_poll = st.tuples(st.just("poll"), st.just(0), st.just(0))
# Writes, commits and polls often enough that several transactions overlap between polls.
ops = st.lists(
    st.one_of(_write, _write, _write, _commit, _end, _insert, _poll, _poll),
    min_size=6,
    max_size=40,
)
# The two interleavings that lose a change: a write of an older transaction committed after a
# younger one was handed out (a timestamp cursor), and an older transaction writing after a
# younger one took a lower sequence number (a bare sequence cursor, even with an xmin cut).
SLOW_AND_FAST = [("write", 0, 0), ("write", 1, 1), ("commit", 1, 0), ("poll", 0, 0)]
SEQUENCE_INVERSION = [
    ("write", 0, 2),
    ("write", 1, 1),
    ("write", 0, 0),
    ("commit", 0, 0),
    ("poll", 0, 0),
    ("commit", 1, 0),
]


class FeedReader:
    """Follows ``next`` to the end, then remembers ``poll``: all a client has."""

    def __init__(self, client, page_size):
        self.client = client
        self.url = f"/api/v1/messages?page_size={page_size}"
        self.view: dict[str, str] = {}
        self.seen_contents: set[str] = set()

    def poll(self):
        for _ in range(500):
            response = self.client.get(self.url)
            assert response.status_code == 200, response.content
            page = response.json()
            for row in page["results"]:
                self.view[row["id"]] = row["content"]
                self.seen_contents.add(row["content"])
            if not page["next"]:
                self.url = page["poll"]
                return
            self.url = page["next"]
        raise AssertionError("the feed's links do not end")


def new_account():
    from inbox.models import Inbox

    account = Account.objects.create(name=f"prop-{uuid.uuid4()}")
    inbox = Inbox.objects.create(
        account=account,
        name="wa",
        channel_type="whatsapp_cloud",
        config={"phone_number_id": "1", "access_token": "t", "app_secret": "s"},
    )
    messages = sent_messages(inbox, ROWS, prefix=f"wamid.{account.id}.")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(account)}")
    return account, [str(m.id) for m in messages], client


def table(account):
    return {
        str(mid): content
        for mid, content in Message.objects.filter(account=account).values_list("id", "content")
    }


# --- PostgreSQL: concurrent transactions ------------------------------------------------------


def _connect():
    import psycopg

    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
    )


def _insert_sql():
    """Copy a template message with a new id and content (unique ids cleared)."""
    table_name = Message._meta.db_table
    columns, values = [], []
    for field in Message._meta.concrete_fields:
        columns.append(field.column)
        if field.column == "id" or field.column == "content":
            values.append("%s")
        elif field.column in ("customer_message_id", "provider_message_id"):
            values.append("NULL")
        else:
            values.append(field.column)
    return (
        f"INSERT INTO {table_name} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {table_name} WHERE id = %s"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_writers_and_a_poller_end_equal_to_the_table():
    writers = [_connect() for _ in range(WRITERS)]
    insert_sql = _insert_sql()
    labels = itertools.count()

    @settings(
        max_examples=int(os.environ.get("FEED_PROPERTY_EXAMPLES", 30)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(ops=ops, page_size=st.integers(1, 3))
    @example(ops=SLOW_AND_FAST, page_size=1)
    @example(ops=SEQUENCE_INVERSION, page_size=1)
    def run(ops, page_size):
        account, rows, client = new_account()
        reader = FeedReader(client, page_size)
        committed = list(rows)  # ids every writer may touch
        own_new: dict[int, list[str]] = {w: [] for w in range(WRITERS)}
        locks: dict[str, int] = {}  # row id -> writer whose open transaction wrote it
        pending: dict[int, set[str]] = {w: set() for w in range(WRITERS)}  # contents written
        rolled_back: set[str] = set()
        try:
            for kind, who, which in ops:
                if kind == "poll":
                    reader.poll()
                    assert not reader.seen_contents & rolled_back
                    continue
                writer = writers[who]
                if kind in ("write", "insert"):
                    label = f"w{next(labels)}"
                    if kind == "insert":
                        new_id = str(uuid.uuid4())
                        writer.execute(insert_sql, [new_id, label, rows[0]])
                        own_new[who].append(new_id)
                        locks[new_id] = who
                    else:
                        candidates = committed + own_new[who]
                        row = candidates[which % len(candidates)]
                        if locks.get(row, who) != who:
                            continue  # would wait for the other transaction's row lock
                        writer.execute(
                            f"UPDATE {Message._meta.db_table} SET content = %s, "
                            "version = version + 1, updated_at = now() WHERE id = %s",
                            [label, row],
                        )
                        locks[row] = who
                    pending[who].add(label)
                else:
                    if kind == "commit":
                        writer.commit()
                        committed += own_new[who]
                    else:
                        writer.rollback()
                        rolled_back |= pending[who]
                    own_new[who] = []
                    pending[who] = set()
                    locks = {row: w for row, w in locks.items() if w != who}
            for writer in writers:
                writer.commit()
            reader.poll()
            assert reader.view == table(account)
            assert not reader.seen_contents & rolled_back
        finally:
            for writer in writers:
                writer.rollback()

    try:
        run()
    finally:
        for writer in writers:
            writer.close()


# --- any database: one writer at a time -------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.one_of(st.tuples(st.just("write"), st.integers(0, ROWS - 1)), st.just(("poll", 0))),
        max_size=25,
    ),
    page_size=st.integers(1, 3),
)
@pytest.mark.django_db
def test_serial_writes_and_polls_end_equal_to_the_table(steps, page_size):
    account, rows, client = new_account()
    reader = FeedReader(client, page_size)
    for n, (kind, which) in enumerate(steps):
        if kind == "poll":
            reader.poll()
        else:
            Message.objects.filter(id=rows[which]).update(content=f"s{n}")
    reader.poll()
    assert reader.view == table(account)
