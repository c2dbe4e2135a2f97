"""Fuzzing every provider endpoint: arbitrary bodies and headers — including *valid* signatures
over whatever bytes are generated — never produce a 5xx (a 500 would mean a parser crash, a 503
a database write the payload broke)."""

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webhooks.conftest import CONFIGS, post_raw, sign

pytestmark = pytest.mark.django_db

# Keys each provider's parser looks at, so generated JSON reaches deep into the parsers.
KEYS = {
    "whatsapp_360dialog": [
        "object",
        "entry",
        "id",
        "changes",
        "field",
        "value",
        "statuses",
        "messages",
        "contacts",
        "status",
        "timestamp",
        "recipient_id",
        "errors",
        "code",
        "biz_opaque_callback_data",
        "from",
        "type",
        "text",
        "body",
        "recipient_type",
        "recipient_participant_id",
        "wa_id",
        "profile",
    ],
    "facebook": [
        "object",
        "entry",
        "id",
        "time",
        "messaging",
        "standby",
        "changes",
        "field",
        "value",
        "sender",
        "recipient",
        "timestamp",
        "delivery",
        "read",
        "watermark",
        "mids",
        "mid",
        "message",
        "is_echo",
        "text",
        "attachments",
    ],
    "tiktok": [
        "event",
        "content",
        "user_openid",
        "create_time",
        "read",
        "last_read_timestamp",
        "conversation_id",
        "from_user",
        "to_user",
        "id",
        "message_id",
        "timestamp",
        "type",
        "text",
        "body",
    ],
    "bandwidth_sms": [
        "type",
        "time",
        "eventTime",
        "description",
        "to",
        "errorCode",
        "message",
        "id",
        "tag",
        "from",
        "text",
        "media",
    ],
    "line": [
        "destination",
        "events",
        "type",
        "message",
        "source",
        "userId",
        "groupId",
        "roomId",
        "id",
        "text",
        "timestamp",
    ],
    "telegram": [
        "update_id",
        "message",
        "channel_post",
        "business_message",
        "message_id",
        "chat",
        "id",
        "from",
        "date",
        "text",
        "caption",
        "first_name",
        "photo",
    ],
    "viber": [
        "event",
        "timestamp",
        "message_token",
        "user_id",
        "desc",
        "sender",
        "id",
        "name",
        "message",
        "type",
        "text",
    ],
}
KEYS["instagram"] = KEYS["facebook"]
TWILIO_KEYS = [
    "MessageSid",
    "SmsSid",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "RawDlrDoneDate",
    "To",
    "From",
    "Body",
    "NumMedia",
    "ProfileName",
    "ChannelStatusMessage",
    "AccountSid",
]
SIGNATURE_HEADERS = [
    "X-Hub-Signature-256",
    "X-Twilio-Signature",
    "X-Twilio-Webhooks-Signature-Settings",
    "X-Line-Signature",
    "X-Viber-Content-Signature",
    "TikTok-Signature",
    "X-Telegram-Bot-Api-Secret-Token",
    "X-Webhook-Token",
    "Authorization",
    "User-Agent",
    "X-Request-Id",
]
CHANNEL_TYPES = sorted(CONFIGS)

# Header values as HTTP can carry them (latin-1, no control characters).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=40
)
tiktok_header = st.builds(
    lambda t, s: f"t={t},s={s}",
    st.one_of(
        st.integers(-(10**13), 10**13).map(str), st.text("0123456789²٣", max_size=13), header_text
    ),
    st.text("0123456789abcdef", max_size=64),
)
headers_strategy = st.dictionaries(
    st.sampled_from(SIGNATURE_HEADERS),
    st.one_of(header_text, st.just("sha256=" + "0" * 64), st.just("Basic dGlja21hcms6eA==")),
    max_size=3,
) | st.builds(lambda v: {"TikTok-Signature": v}, tiktok_header)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
)


def shapes(keys):
    names = st.sampled_from(keys) | st.text(max_size=4)
    return st.recursive(
        scalars,
        lambda children: (
            st.dictionaries(names, children, max_size=6) | st.lists(children, max_size=3)
        ),
        max_leaves=20,
    )


def json_body(channel_type):
    value = shapes(KEYS.get(channel_type, ["event", "status", "id"]))
    if channel_type == "tiktok":
        # TikTok's content is a JSON string inside the JSON envelope
        value = st.fixed_dictionaries(
            {
                "event": st.sampled_from(
                    ["im_mark_read_msg", "im_receive_msg", "im_send_msg", "x"]
                ),
                "user_openid": st.text(max_size=5),
                "create_time": scalars,
                "content": shapes(KEYS["tiktok"]).map(json.dumps) | scalars,
            }
        )
    if channel_type == "bandwidth_sms":
        value = st.lists(value, max_size=3) | value
    return value.map(lambda v: json.dumps(v, allow_nan=True).encode())


def form_body():
    return st.dictionaries(
        st.sampled_from(TWILIO_KEYS) | st.text(max_size=4), st.text(max_size=20), max_size=8
    ).map(lambda d: urlencode(d).encode())


def mail_body():
    header = st.sampled_from(
        [
            "From",
            "Subject",
            "Return-Path",
            "Content-Type",
            "Message-ID",
            "X-Tickmark-Correlation",
            "Action",
            "Status",
            "Final-Recipient",
            "Diagnostic-Code",
            "Date",
            "Last-Attempt-Date",
        ]
    )
    values = st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [
                "<>",
                "MAILER-DAEMON@x",
                "failed",
                "delayed",
                "5.1.1",
                "multipart/report; report-type=delivery-status; boundary=B",
                "message/delivery-status",
                "text/rfc822-headers",
                "<tm1.0123456789abcdef0123456789abcdef.1@tickmark>",
                "tm1.0123456789abcdef0123456789abcdef.1",
                "rfc822; a@b",
                "smtp; 550 5.1.1 no",
                "Thu, 01 Jan 2026 00:00:00 +0000",
                "Thu, 01 Jan 99999 00:00:00 +9999",
            ]
        ),
    )
    part = st.lists(st.tuples(header, values), max_size=6).map(
        lambda hs: "".join(f"{k}: {v}\n" for k, v in hs)
    )
    return st.lists(part, min_size=1, max_size=4).map(
        lambda parts: ("\n--B\n".join(parts) + "\n--B--\n").encode("utf-8", "surrogateescape")
    )


def bodies(channel_type):
    options = [st.binary(max_size=200), json_body(channel_type)]
    if channel_type.startswith("twilio"):
        options.append(form_body())
    if channel_type == "email":
        options.append(mail_body())
    return st.one_of(*options)


@pytest.mark.parametrize("channel_type", CHANNEL_TYPES)
def test_no_input_makes_the_endpoint_fail(client, provider_inbox, channel_type):
    inbox = provider_inbox(channel_type)

    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        body=bodies(channel_type),
        extra=headers_strategy,
        signed=st.booleans(),
        query=st.one_of(
            st.just(""),
            st.builds(
                lambda v: urlencode({"tm": v}),
                st.text(max_size=40) | st.just("tm1.0123456789abcdef0123456789abcdef.1"),
            ),
        ),
        content_type=st.sampled_from(
            [
                "application/json",
                "application/x-www-form-urlencoded",
                "message/rfc822",
                "text/plain; charset=utf-8",
            ]
        ),
    )
    def run(body, extra, signed, query, content_type):
        headers = dict(extra)
        if signed:
            headers.update(sign(inbox, body, query=query).headers)
        response = post_raw(
            client, inbox, body, headers=headers, content_type=content_type, query=query
        )
        assert response.status_code < 500, (response.status_code, response.content, body, headers)

    run()


@pytest.mark.parametrize("channel_type", ["telegram", "viber", "bandwidth_sms", "line"])
def test_nul_characters_in_provider_text_are_stored_not_a_503(
    client, provider_inbox, make_message, channel_type
):
    # Found while fuzzing: PostgreSQL text cannot hold U+0000, so a JSON "\u0000" in a contact's
    # message or a provider's error text failed the write with a 503 on every retry.
    from inbox.models import Message
    from statuses.models import StatusEvent

    inbox = provider_inbox(channel_type)
    body = {
        "telegram": b'{"update_id":1,"message":{"message_id":7,"date":1767225600,"chat":{"id":5,"type":"private"},"from":{"id":5,"first_name":"A\\u0000"},"text":"a\\u0000b"}}',
        "viber": b'{"event":"message","timestamp":1767225600000,"sender":{"id":"u1","name":"N\\u0000"},"message":{"type":"text","text":"a\\u0000b"},"message_token":99}',
        "bandwidth_sms": b'[{"type":"message-received","time":"2026-08-12T15:30:16Z","message":{"id":"bw-nul","from":"+1555\\u0000","text":"a\\u0000b"}}]',
        "line": b'{"events":[{"type":"message","timestamp":1767225600000,"source":{"type":"user","userId":"U4af4\\u0000"},"message":{"id":"7","type":"text","text":"a\\u0000b"}}]}',
    }[channel_type]
    response = post_raw(client, inbox, body, headers=sign(inbox, body).headers)
    assert response.status_code == 200
    assert Message.objects.get(inbox=inbox, direction="incoming").content == "ab"
    if channel_type == "viber":
        message = make_message(inbox, to="u1", provider_message_id="12")
        failed = b'{"event":"failed","timestamp":1767225600000,"user_id":"u1","desc":"bad\\u0000desc","message_token":12}'
        assert (
            post_raw(client, inbox, failed, headers=sign(inbox, failed).headers).status_code == 200
        )
        message.refresh_from_db()
        assert (message.status, message.error_detail) == ("failed", "baddesc")
        assert StatusEvent.objects.get(message=message).error_detail == "baddesc"
