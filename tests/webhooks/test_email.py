"""Email bounces: a raw RFC 3464 DSN POSTed with ``X-Webhook-Token`` (or piped into
``manage.py ingest_email``) fails the original message, matched by our Message-ID
``<correlation@tickmark>`` or the ``X-Tickmark-Correlation`` header."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from statuses import correlation
from statuses.machine import UNRECOGNIZED, Status
from statuses.models import StatusEvent, WebhookDelivery
from statuses.providers import email as email_provider
from tests.webhooks.conftest import (
    CONTACTS,
    assert_malformed_kept,
    assert_refused_and_nothing_changed,
    post_raw,
    post_signed,
    record_send,
)

pytestmark = pytest.mark.django_db
TO = CONTACTS["email"]
DIAGNOSTIC = "550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown"


def dsn(
    message_id,
    correlation_header=None,
    action="failed",
    status="5.1.1",
    diagnostic=f"smtp; {DIAGNOSTIC}",
    recipient=TO,
):
    header_line = f"X-Tickmark-Correlation: {correlation_header}\n" if correlation_header else ""
    return (
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)\n"
        "To: support@acme.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: Thu, 01 Jan 2026 00:10:00 +0000\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\n'
        "\n"
        "--BOUNDARY\n"
        "Content-Type: text/plain\n"
        "\n"
        "I'm sorry to have to inform you that your message could not be delivered.\n"
        "--BOUNDARY\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.acme.example\n"
        "Arrival-Date: Thu, 01 Jan 2026 00:00:00 +0000\n"
        "\n"
        f"Final-Recipient: rfc822; {recipient}\n"
        f"Original-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\n"
        f"Status: {status}\n"
        "Remote-MTA: dns; mx.example.org\n"
        f"Diagnostic-Code: {diagnostic}\n"
        "Last-Attempt-Date: Thu, 01 Jan 2026 00:09:59 +0000\n"
        "\n"
        "--BOUNDARY\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
        "From: Acme Support <support@acme.example>\n"
        f"To: {recipient}\n"
        "Subject: Invoice 42\n"
        f"Message-ID: {message_id}\n"
        f"{header_line}"
        "--BOUNDARY--\n"
    ).encode()


@pytest.fixture
def sent_mail(email_inbox, make_message):
    """An email that went out: its provider id is our Message-ID ``<correlation@tickmark>``."""
    return _send(make_message(email_inbox, to=TO, created_at=QUEUED))


# Sent just before the bounces below were written (a bounce never precedes its send).
QUEUED = datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC)


def _send(message):
    corr = correlation.make(message.id, 1)
    # as the SMTP sender records it
    record_send(
        message, email_provider.message_id_for(corr), occurred_at=QUEUED + timedelta(seconds=1)
    )
    message.refresh_from_db()
    message.correlation = corr
    return message


def test_hard_bounce_fails_the_original_matched_by_message_id(client, email_inbox, sent_mail):
    assert post_signed(client, email_inbox, dsn(sent_mail.provider_message_id)).status_code == 200
    sent_mail.refresh_from_db()
    assert (sent_mail.status, sent_mail.tick) == (Status.FAILED, "failed")
    assert sent_mail.error_code == "5.1.1"
    assert sent_mail.error_title == email_provider.ERRORS["5.1.1"].title
    assert sent_mail.error_detail == DIAGNOSTIC
    assert sent_mail.sent_at is not None
    assert sent_mail.failed_at.isoformat() == "2026-01-01T00:09:59+00:00"


def test_matched_by_the_correlation_header_when_the_message_id_was_rewritten(
    client, email_inbox, sent_mail
):
    # Some relays (e.g. Exchange, SES) replace the Message-ID; our header survives.
    raw = dsn(
        "<0100018c-rewritten@eu-west-1.amazonses.com>", correlation_header=sent_mail.correlation
    )
    assert post_signed(client, email_inbox, raw).status_code == 200
    sent_mail.refresh_from_db()
    assert (sent_mail.status, sent_mail.error_code) == (Status.FAILED, "5.1.1")


def test_lost_send_result_is_recovered_from_the_bounce(client, email_inbox, make_message):
    message = make_message(email_inbox, to=TO)  # the send answer never got recorded
    corr = correlation.make(message.id, 1)
    post_signed(client, email_inbox, dsn(email_provider.message_id_for(corr)))
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (Status.FAILED, f"<{corr}@tickmark>")


def test_delayed_is_an_event_only(client, email_inbox, sent_mail):
    raw = dsn(
        sent_mail.provider_message_id,
        action="delayed",
        status="4.4.1",
        diagnostic="smtp; 421 4.4.1 Connection timed out",
    )
    assert post_signed(client, email_inbox, raw).status_code == 200
    event = StatusEvent.objects.get(inbox=email_inbox, source="webhook")
    assert (event.status, event.raw_status, event.message_id, event.error_code) == (
        UNRECOGNIZED,
        "delayed",
        sent_mail.id,
        "4.4.1",
    )
    sent_mail.refresh_from_db()
    assert (sent_mail.status, sent_mail.version) == (Status.SENT, 2)  # 2: the send result


def test_duplicate_bounce_is_one_event(client, email_inbox, sent_mail):
    raw = dsn(sent_mail.provider_message_id)
    post_signed(client, email_inbox, raw)
    post_signed(client, email_inbox, raw)
    assert StatusEvent.objects.get(inbox=email_inbox, source="webhook").duplicate_count == 1
    sent_mail.refresh_from_db()
    assert sent_mail.version == 3  # send result, then the bounce once


def test_delayed_and_failed_in_either_order_converge(client, email_inbox, make_message, sent_mail):
    delayed = dict(action="delayed", status="4.4.1", diagnostic="smtp; 421 4.4.1 timeout")
    post_signed(client, email_inbox, dsn(sent_mail.provider_message_id))
    post_signed(client, email_inbox, dsn(sent_mail.provider_message_id, **delayed))
    other = _send(make_message(email_inbox, to=TO))
    post_signed(client, email_inbox, dsn(other.provider_message_id, **delayed))
    post_signed(client, email_inbox, dsn(other.provider_message_id))
    sent_mail.refresh_from_db()
    other.refresh_from_db()
    assert sent_mail.status == other.status == Status.FAILED
    assert sent_mail.error_code == other.error_code == "5.1.1"


def test_wrong_and_missing_token_are_403(client, email_inbox, sent_mail):
    raw = dsn(sent_mail.provider_message_id)
    wrong = post_raw(
        client,
        email_inbox,
        raw,
        headers={"X-Webhook-Token": "mail-hook-00000000"},
        content_type="message/rfc822",
    )
    assert_refused_and_nothing_changed(wrong, email_inbox, [sent_mail])
    missing = post_raw(client, email_inbox, raw, content_type="message/rfc822")
    assert_refused_and_nothing_changed(missing, email_inbox, [sent_mail])


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"no header fields here at all"])
def test_malformed_is_400_and_kept(client, email_inbox, raw):
    assert_malformed_kept(post_signed(client, email_inbox, raw), email_inbox, raw)


def test_mail_about_no_message_of_ours_is_200_and_changes_nothing(client, email_inbox, sent_mail):
    raw = dsn("<CAF=foreign@mail.gmail.com>")
    assert post_signed(client, email_inbox, raw).status_code == 200
    assert not StatusEvent.objects.filter(source="webhook").exists()
    reply = f"From: ghost@example.org\nTo: support@acme.example\nSubject: Re: Invoice 42\nIn-Reply-To: {sent_mail.provider_message_id}\n\nThanks, 550 thanks!\n".encode()
    assert post_signed(client, email_inbox, reply).status_code == 200
    assert not StatusEvent.objects.filter(source="webhook").exists()
    sent_mail.refresh_from_db()
    assert sent_mail.status == Status.SENT


# --- manage.py ingest_email ------------------------------------------------------------------


def ingest(inbox_id, raw):
    out = io.StringIO()
    call_command("ingest_email", inbox=str(inbox_id), stdin=io.BytesIO(raw), stdout=out)
    return out.getvalue()


def test_ingest_email_command_fails_the_original(email_inbox, sent_mail):
    output = ingest(email_inbox.id, dsn(sent_mail.provider_message_id))
    sent_mail.refresh_from_db()
    assert (sent_mail.status, sent_mail.error_code) == (Status.FAILED, "5.1.1")
    assert "1 status event" in output
    assert "5.1.1" in output and str(sent_mail.id) in output and "[applied]" in output
    delivery = WebhookDelivery.objects.get(inbox=email_inbox)
    assert (delivery.verdict, delivery.headers["user-agent"]) == (
        "accepted",
        "tickmark ingest_email",
    )
    assert "x-webhook-token" not in delivery.headers
    # piping the same bounce again (an MTA retry) changes nothing
    assert "[applied]" not in ingest(email_inbox.id, dsn(sent_mail.provider_message_id))
    assert StatusEvent.objects.get(inbox=email_inbox, source="webhook").duplicate_count == 1


def test_ingest_email_command_reports_unrelated_mail(email_inbox):
    output = ingest(email_inbox.id, b"From: someone@example.org\nSubject: hello\n\nhi\n")
    assert "nothing changed" in output


def test_ingest_email_command_refuses_bad_input(email_inbox, provider_inbox):
    with pytest.raises(CommandError, match="400"):
        ingest(email_inbox.id, b"")
    assert WebhookDelivery.objects.get(inbox=email_inbox).verdict == "malformed"
    with pytest.raises(CommandError, match="not an email inbox"):
        ingest(provider_inbox("telegram").id, b"x")
    with pytest.raises(CommandError, match="no inbox"):
        ingest("00000000-0000-0000-0000-000000000000", b"x")
    with pytest.raises(CommandError, match="UUID"):
        ingest("42", b"x")
