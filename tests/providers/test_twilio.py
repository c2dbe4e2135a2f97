import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from statuses.machine import UNRECOGNIZED, Status
from statuses.providers import twilio
from statuses.providers.base import MalformedPayload, SendOutcome
from tests.fakes.recorder import Reply
from tests.providers.adapter_support import (
    CORRELATION_ID,
    RECEIVED_AT,
    fuzz,
    make_request,
    outgoing,
    parse_or_malformed,
    recording_server_fixture,
)

AUTH_TOKEN = "test_auth_token_0123456789abcdef"
ACCOUNT_SID = "AC" + "x" * 32
CONFIG = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15017250604"}
STATUS_URL = "https://inbox.example.com/webhooks/twilio/status/"
MESSAGE_SID = "SM1342fe1b2c904d1ab04f0fc7a58abca9"
DELIVERED = {
    "AccountSid": ACCOUNT_SID,
    "ApiVersion": "2010-04-01",
    "From": "+15017250604",
    "MessageSid": MESSAGE_SID,
    "MessageStatus": "delivered",
    "RawDlrDoneDate": "2608121530",
    "SmsSid": MESSAGE_SID,
    "SmsStatus": "delivered",
    "To": "+15558675310",
}
running_server, server = recording_server_fixture()


class QueryDictLike(dict):
    """Multi-valued params the way twilio's validator reads Django's QueryDict."""

    def getlist(self, key):
        return self[key]


def signed(params, url=STATUS_URL, token=AUTH_TOKEN, query=None, sign_url=None):
    signature = RequestValidator(token).compute_signature(sign_url or url, params)
    return make_request(
        urlencode(params),
        url=url,
        query=query,
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def callback(**params):
    return make_request(
        urlencode(params), url=STATUS_URL + "?tm=" + CORRELATION_ID, query={"tm": CORRELATION_ID}
    )


# --- verify ---------------------------------------------------------------------------------


def test_reference_vector_twilio_documented_example():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio.signature_for("12345", url, {k: [v] for k, v in params.items()}) == (
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )
    request = make_request(
        urlencode(params), url=url, headers={"X-Twilio-Signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="}
    )
    assert twilio.verify(request, {"auth_token": "12345"})


def test_reference_vector_status_callback():
    request = make_request(
        urlencode(DELIVERED),
        url=STATUS_URL,
        headers={"X-Twilio-Signature": "FgHXAzZ+mvW0wURec+/MR3kic9w="},
    )
    assert twilio.verify(request, CONFIG)


def test_signed_callback_with_our_query_string():
    url = STATUS_URL + "?tm=" + CORRELATION_ID
    assert twilio.verify(signed(DELIVERED, url=url), CONFIG)


@pytest.mark.parametrize(
    "url, sign_url",
    [
        ("https://inbox.example.com/cb/", "https://inbox.example.com:443/cb/"),
        ("https://inbox.example.com:443/cb/", "https://inbox.example.com/cb/"),
        ("http://inbox.example.com/cb/?a=1", "http://inbox.example.com:80/cb/?a=1"),
        ("https://inbox.example.com:8443/cb/", "https://inbox.example.com/cb/"),
    ],
)
def test_url_with_and_without_the_port(url, sign_url):
    assert twilio.verify(signed(DELIVERED, url=url, sign_url=sign_url), CONFIG)


def test_multi_valued_params():
    body = "MediaUrl=b&MediaUrl=a&MessageSid=SM1&MediaUrl=a"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        STATUS_URL, QueryDictLike({"MediaUrl": ["b", "a", "a"], "MessageSid": ["SM1"]})
    )
    request = make_request(body, url=STATUS_URL, headers={"X-Twilio-Signature": signature})
    assert twilio.verify(request, CONFIG)


def test_json_body_signed_by_hash():
    body = b'{"MessageSid":"SM1"}'
    url = STATUS_URL + "?bodySHA256=" + hashlib.sha256(body).hexdigest()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    request = make_request(body, url=url, headers={"X-Twilio-Signature": signature})
    assert twilio.verify(request, CONFIG)
    tampered = make_request(body + b" ", url=url, headers={"X-Twilio-Signature": signature})
    assert not twilio.verify(tampered, CONFIG)


def test_sha256_signature_settings():
    url = STATUS_URL
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, DELIVERED, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
    }
    assert twilio.verify(make_request(urlencode(DELIVERED), url=url, headers=headers), CONFIG)
    headers["X-Twilio-Webhooks-Signature-Settings"] = "algorithm=HMAC_MD5"
    assert not twilio.verify(make_request(urlencode(DELIVERED), url=url, headers=headers), CONFIG)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: {**r.headers, "x-twilio-signature": ""},
        lambda r: {k: v for k, v in r.headers.items() if k != "x-twilio-signature"},
        lambda r: {**r.headers, "x-twilio-signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
        lambda r: {**r.headers, "x-twilio-signature": "ünï"},
    ],
)
def test_forged_or_missing_signature(change):
    request = signed(DELIVERED)
    forged = make_request(request.body, url=request.url, headers=change(request))
    assert not twilio.verify(forged, CONFIG)


def test_wrong_token_url_or_body():
    request = signed(DELIVERED)
    assert not twilio.verify(request, {**CONFIG, "auth_token": "other"})
    assert not twilio.verify(request, {})
    moved = make_request(request.body, url=STATUS_URL + "x", headers=request.headers)
    assert not twilio.verify(moved, CONFIG)
    changed = make_request(
        urlencode({**DELIVERED, "MessageStatus": "read"}), url=STATUS_URL, headers=request.headers
    )
    assert not twilio.verify(changed, CONFIG)


@pytest.mark.parametrize("url", ["https://[::1/x", "https://host:notaport/x"])
def test_unparsable_urls_never_raise(url):
    request = make_request("a=b", url=url, headers={"X-Twilio-Signature": "x"})
    assert not twilio.verify(request, CONFIG)


params_strategy = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.lists(st.text(max_size=8), min_size=1, max_size=3),
    max_size=5,
)


@fuzz
@given(
    params_strategy,
    st.sampled_from(
        ["https://a.example/cb", "https://a.example:443/cb?x=1", "http://a.example:8080/cb?tm=1"]
    ),
    st.sampled_from([AUTH_TOKEN, "another_token"]),
)
def test_agrees_with_twilios_request_validator(params, url, signing_token):
    body = urlencode([(k, v) for k, values in params.items() for v in values])
    # What we receive after a round trip through the form encoding.
    received = QueryDictLike(parse_qs(body, keep_blank_values=True))
    signature = RequestValidator(signing_token).compute_signature(url, received)
    request = make_request(body, url=url, headers={"X-Twilio-Signature": signature})
    expected = RequestValidator(AUTH_TOKEN).validate(url, received, signature)
    assert expected is (signing_token == AUTH_TOKEN)
    assert twilio.verify(request, CONFIG) is expected


# --- parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("accepted", Status.SENT),
        ("scheduled", Status.SENT),
        ("queued", Status.SENT),
        ("sending", Status.SENT),
        ("sent", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("partially_delivered", Status.DELIVERED),
        ("read", Status.READ),
        ("undelivered", Status.FAILED),
        ("failed", Status.FAILED),
        ("canceled", Status.FAILED),
        ("beamed", UNRECOGNIZED),
    ],
)
def test_every_status_value_is_mapped(raw, expected):
    [update] = twilio.parse(callback(**{**DELIVERED, "MessageStatus": raw}), CONFIG).statuses
    assert (update.status, update.raw_status) == (expected, raw)


def test_delivered_callback_fields():
    result = twilio.parse(callback(**DELIVERED), CONFIG)
    [update] = result.statuses
    assert update.provider_message_id == MESSAGE_SID
    assert update.occurred_at == datetime(2026, 8, 12, 15, 30, tzinfo=UTC)
    assert update.dedupe_key == f"{MESSAGE_SID}:delivered::2608121530"
    assert update.correlation_id == CORRELATION_ID
    assert update.recipient == "+15558675310"
    assert update.raw["AccountSid"] == ACCOUNT_SID
    assert result.inbound == []


def test_without_done_date_the_arrival_time_is_used():
    params = {k: v for k, v in DELIVERED.items() if k != "RawDlrDoneDate"}
    params["MessageStatus"] = "sent"
    [update] = twilio.parse(callback(**params), CONFIG).statuses
    assert update.occurred_at == RECEIVED_AT
    assert update.dedupe_key == f"{MESSAGE_SID}:sent::"


@pytest.mark.parametrize("done_date", ["2613121530", "26081215", "abcdefghij"])
def test_bad_done_date_falls_back_to_arrival(done_date):
    [update] = twilio.parse(callback(**{**DELIVERED, "RawDlrDoneDate": done_date}), CONFIG).statuses
    assert update.occurred_at == RECEIVED_AT


def test_whatsapp_failed_carries_the_error():
    params = {
        "AccountSid": ACCOUNT_SID,
        "ChannelPrefix": "whatsapp",
        "ChannelStatusMessage": "Outside of allowed window",
        "ErrorCode": "63016",
        "From": "whatsapp:+14155238886",
        "MessageSid": "SM9f1e",
        "MessageStatus": "failed",
        "SmsStatus": "failed",
        "To": "whatsapp:+15558675310",
    }
    [update] = twilio.parse(callback(**params), CONFIG).statuses
    assert update.status == Status.FAILED
    assert update.error_code == "63016"
    assert update.error_title == twilio.ERRORS["63016"].title
    assert update.error_detail == "Outside of allowed window"
    assert update.recipient == "+15558675310"
    assert update.dedupe_key == "SM9f1e:failed:63016:"


def test_undelivered_with_error_message_and_canceled_without_code():
    [update] = twilio.parse(
        callback(
            MessageSid="SM1",
            MessageStatus="undelivered",
            ErrorCode="30003",
            ErrorMessage="Unreachable",
        ),
        CONFIG,
    ).statuses
    assert (update.error_code, update.error_detail) == ("30003", "Unreachable")
    [canceled] = twilio.parse(callback(MessageSid="SM1", MessageStatus="canceled"), CONFIG).statuses
    assert (canceled.status, canceled.error_title) == (Status.FAILED, "Canceled")


def test_whatsapp_read():
    params = {
        "AccountSid": ACCOUNT_SID,
        "ChannelToAddress": "+15558675310",
        "EventType": "READ",
        "From": "whatsapp:+14155238886",
        "MessageSid": "SM9f1e",
        "MessageStatus": "read",
        "SmsStatus": "read",
        "To": "whatsapp:+15558675310",
    }
    [update] = twilio.parse(callback(**params), CONFIG).statuses
    assert update.status == Status.READ


def test_inbound_sms():
    params = {
        "MessageSid": "SMin1",
        "SmsSid": "SMin1",
        "AccountSid": ACCOUNT_SID,
        "From": "+15558675310",
        "To": "+15017250604",
        "Body": "Hello back",
        "NumMedia": "0",
        "SmsStatus": "received",
    }
    result = twilio.parse(callback(**params), CONFIG)
    assert result.statuses == []
    [message] = result.inbound
    assert (message.contact_address, message.provider_message_id, message.content) == (
        "+15558675310",
        "SMin1",
        "Hello back",
    )
    assert message.occurred_at == RECEIVED_AT


def test_inbound_whatsapp_media_without_status():
    params = {
        "MessageSid": "SMin2",
        "From": "whatsapp:+15558675310",
        "To": "whatsapp:+14155238886",
        "Body": "",
        "NumMedia": "1",
        "ProfileName": "Kerry",
    }
    [message] = twilio.parse(callback(**params), CONFIG).inbound
    assert message.contact_address == "+15558675310"
    assert message.content == "[media]"
    assert message.contact_name == "Kerry"


@pytest.mark.parametrize(
    "body",
    [b"", b"MessageStatus=delivered", b"MessageSid=SM1", b"\xff\xfe", b"MessageSid=SM1&To=x"],
)
def test_malformed_bodies(body):
    with pytest.raises(MalformedPayload):
        twilio.parse(make_request(body), CONFIG)


@fuzz
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_malformed(body):
    parse_or_malformed(twilio, make_request(body), CONFIG)


@fuzz
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "MessageSid",
                "MessageStatus",
                "SmsStatus",
                "Body",
                "ErrorCode",
                "RawDlrDoneDate",
                "From",
                "NumMedia",
            ]
        ),
        st.text(max_size=12),
    )
)
def test_arbitrary_params_only_raise_malformed(params):
    parse_or_malformed(twilio, make_request(urlencode(params)), CONFIG)


# --- send -----------------------------------------------------------------------------------

CREATED = {"sid": "SMout1", "status": "queued", "account_sid": ACCOUNT_SID, "error_code": None}


def send(server, message=None, **config):
    with httpx.Client(timeout=2) as client:
        return twilio.send(
            client, {**CONFIG, "api_base_url": server.url, **config}, message or outgoing()
        )


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_send_sms_accepted(server):
    server.queue(Reply(201, CREATED))
    result = send(server)
    assert (result.outcome, result.provider_message_id, result.status) == (
        SendOutcome.ACCEPTED,
        "SMout1",
        "sent",
    )
    [request] = server.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["authorization"] == basic(ACCOUNT_SID, AUTH_TOKEN)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": ["+16505076520"],
        "From": ["+15017250604"],
        "Body": ["Hello there"],
        "StatusCallback": ["https://inbox.example.com/webhooks/twilio_sms/1/?tm=" + CORRELATION_ID],
    }


def test_send_whatsapp_prefixes_addresses(server):
    server.queue(Reply(201, CREATED), Reply(201, CREATED))
    send(server, channel_type="twilio_whatsapp")
    send(server, from_number="whatsapp:+14155238886")
    for request in server.requests:
        form = request.form()
        assert form["To"] == ["whatsapp:+16505076520"]
        assert form["From"][0].startswith("whatsapp:+")
        assert not form["From"][0].startswith("whatsapp:whatsapp:")


def test_send_through_a_messaging_service_with_a_template(server):
    server.queue(Reply(201, CREATED))
    template = {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": "42"}}
    send(
        server,
        outgoing(template=template, content=""),
        from_number="",
        messaging_service_sid="MG0123",
    )
    form = server.requests[0].form()
    assert "From" not in form and "Body" not in form
    assert form["MessagingServiceSid"] == ["MG0123"]
    assert form["ContentSid"] == [template["content_sid"]]
    assert json.loads(form["ContentVariables"][0]) == {"1": "42"}


def test_send_template_without_content_sid_is_rejected_up_front(server):
    result = send(server, outgoing(template={"name": "order_update", "language": "en"}))
    assert (result.outcome, result.error_code) == (SendOutcome.REJECTED, "invalid_template")
    assert server.requests == []


def test_send_rejected_with_twilios_error(server):
    error = {
        "code": 21211,
        "message": "The 'To' number +1555 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    server.queue(Reply(400, error))
    result = send(server)
    assert result.outcome == SendOutcome.REJECTED
    assert result.error_code == "21211"
    assert result.error_title == twilio.ERRORS["21211"].title
    assert result.error_detail == error["message"]
    assert result.raw == error


def test_send_without_sender_is_rejected(server):
    result = send(server, from_number="")
    assert (result.outcome, result.error_code) == (SendOutcome.REJECTED, "misconfigured")


def test_error_catalogue_covers_the_reference():
    for code in [
        "30003",
        "30004",
        "30005",
        "30006",
        "30007",
        "30008",
        "21610",
        "30032",
        "30034",
        "63016",
        "63014",
        "63024",
        "63032",
        "63017",
        "63049",
    ]:
        assert twilio.ERRORS[code].title


def test_hmac_is_sha1_base64():
    # Guard against a refactor that changes the digest or encoding of the default signature.
    expected = base64.b64encode(hmac.new(b"k", b"https://x/ab", hashlib.sha1).digest()).decode()
    assert twilio.signature_for("k", "https://x/", {"a": ["b"]}) == expected
