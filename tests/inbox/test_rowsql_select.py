"""``rowsql.select_one`` loads a row exactly as the ORM's ``.filter(...).first()`` does: every
field with the same value and type (JSON parsed, datetimes aware, uuids as UUID), and the same
``None`` for a row that does not match. The message lookup of the API reads through it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inbox import rowsql, selectors
from inbox.models import Message
from statuses.catalogue import CHANNELS, Family


def _fields(message: Message) -> dict:
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}


@pytest.fixture
def message(make_message, inbox):
    now = timezone.now()
    return make_message(
        inbox,
        template={"name": "order_update", "language": "en", "components": [{"type": "body"}]},
        customer_message_id="crm-7",
        provider_message_id="wamid.select-one",
        status="delivered",
        delivered_at=now,
        sent_at=now - timedelta(seconds=2),
    )


def test_a_row_is_loaded_as_the_orm_loads_it(message):
    raw = rowsql.select_one(Message, id=message.id, account=message.account_id)
    orm = Message.objects.filter(id=message.id, account=message.account_id).first()
    assert raw is not None and raw._state.adding is False
    assert _fields(raw) == _fields(orm)
    assert {k: type(v) for k, v in _fields(raw).items()} == {
        k: type(v) for k, v in _fields(orm).items()
    }
    assert raw.template["components"] == [{"type": "body"}]


def test_no_match_is_none_whichever_value_differs(message, other_account):
    assert rowsql.select_one(Message, id=message.id, account=other_account.id) is None
    assert (
        rowsql.select_one(Message, id=message.id, account=message.account_id, channel_type=[])
        is None
    )


def test_a_sequence_means_one_of_them(message):
    found = rowsql.select_one(
        Message, id=message.id, account=message.account_id, channel_type=["x", message.channel_type]
    )
    assert found == message
    assert (
        rowsql.select_one(Message, id=message.id, account=message.account_id, channel_type=["x"])
        is None
    )


def test_the_message_lookup_keeps_to_the_account_and_the_family(message, account, other_account):
    assert selectors.message_get(account=account, message_id=str(message.id)) == message
    assert selectors.message_get(account=other_account, message_id=str(message.id)) is None
    assert selectors.message_get(account=account, message_id="not-a-uuid") is None
    family = CHANNELS[message.channel_type].family
    other = Family.SMS if family != Family.SMS else Family.WHATSAPP
    assert selectors.message_get(account=account, message_id=message.id, family=family) == message
    assert selectors.message_get(account=account, message_id=message.id, family=other) is None
