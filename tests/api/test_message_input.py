"""The fast check of ``POST /api/v1/messages`` bodies (inbox/api/message_input.py) never
disagrees with ``MessageCreateSerializer``: whatever it accepts, the serializer accepts with the
same validated data; whatever the serializer refuses, it leaves to the serializer."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.api.message_input import message_create_input
from inbox.api.serializers import MessageCreateSerializer

TEXT = st.one_of(
    st.sampled_from(["+16505550001", " +16505550001 ", "+1", "", "   ", "a@b.co", "user-1"]),
    st.text(max_size=20),
    st.text(alphabet="+0123456789 \t\n", max_size=18),
    st.integers(),
    st.none(),
    st.booleans(),
    st.just("x" * 321),
    st.just("\x00abc"),
    st.just("\ud800"),
)


@pytest.fixture
def inboxes(account, other_account, make_inbox):
    sms = make_inbox(
        account, "twilio_sms", account_sid="AC1", auth_token="t", from_number="+15550001111"
    )
    return [
        str(sms.id),
        str(make_inbox(account, "api").id),
        str(make_inbox(account, "email").id),
        str(make_inbox(account).id),  # WhatsApp
        str(make_inbox(other_account, "api").id),
        "not-a-uuid",
        sms.id.hex,
    ]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fast_check_agrees_with_the_serializer(data, account, inboxes):
    body = {"inbox": data.draw(st.sampled_from(inboxes))}
    for name in ("to", "content", "customer_message_id", "template"):
        if data.draw(st.booleans()):
            body[name] = data.draw(TEXT) if name != "template" else {"name": "hello"}
    fast = message_create_input(body, account)
    serializer = MessageCreateSerializer(data=body, context={"account": account})
    valid = serializer.is_valid()
    if fast is not None:
        assert valid, (body, serializer.errors)
        assert fast == dict(serializer.validated_data)
        assert fast["inbox"].id == serializer.validated_data["inbox"].id
    elif not valid:
        pass  # refused: the serializer words the error
    # (fast is None and valid: an uncommon but acceptable shape, e.g. a template or an email)


def test_the_common_shape_takes_the_fast_path(account, inboxes):
    body = {
        "inbox": inboxes[0],
        "to": " +16505550001",
        "content": " Hi ",
        "customer_message_id": "o-1",
    }
    fast = message_create_input(body, account)
    assert fast is not None
    assert (fast["to"], fast["content"], fast["customer_message_id"]) == (
        "+16505550001",
        "Hi",
        "o-1",
    )
