"""SMTP and DSN error codes explained (reference §11): enhanced status codes and replies."""

from __future__ import annotations

import re

from statuses.providers import _http
from statuses.providers.base import (
    ErrorInfo,
)

# An enhanced status code (RFC 3463) in a reply or a report: class.subject.detail.
ENHANCED_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")

ERRORS: dict[str, ErrorInfo] = {
    # SMTP reply codes (RFC 5321)
    "421": ErrorInfo(
        "Mail server unavailable",
        "The mail server is closing the connection for now (overloaded or shutting down).",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "450": ErrorInfo(
        "Mailbox temporarily unavailable",
        "The recipient's mailbox cannot take mail right now (busy, or greylisting).",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "451": ErrorInfo(
        "Temporary server error",
        "The mail server hit a local error while processing the message.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "452": ErrorInfo(
        "Server storage full",
        "The mail server has no room for the message right now.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "454": ErrorInfo(
        "TLS temporarily unavailable",
        "The server cannot start TLS or authentication right now.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "500": ErrorInfo(
        "Command not recognised",
        "The mail server did not understand a command.",
        "Check that the SMTP host and port point at a real SMTP server.",
    ),
    "501": ErrorInfo(
        "Invalid address or argument",
        "The mail server refused an address or argument as malformed.",
        "Check the recipient and sender addresses.",
    ),
    "503": ErrorInfo(
        "Bad command sequence",
        "The server expected another command first — often authentication.",
        "Set the SMTP username and password if this server requires login.",
    ),
    "530": ErrorInfo(
        "Authentication required",
        "The mail server only accepts mail from authenticated senders.",
        "Set the SMTP username and password in the inbox settings.",
    ),
    "535": ErrorInfo(
        "SMTP login failed",
        "The mail server rejected the username or password.",
        "Check the SMTP username and password in the inbox settings (some providers need an "
        "app password).",
    ),
    "550": ErrorInfo(
        "Mailbox unavailable",
        "The receiving server refused the message for this address (unknown user, or policy).",
        "Check the address; read the detail for the server's reason.",
    ),
    "551": ErrorInfo(
        "User not local",
        "The receiving server does not handle mail for this address.",
        "Check the recipient's address.",
    ),
    "552": ErrorInfo(
        "Storage exceeded",
        "The recipient's mailbox is full or the message is too large.",
        "Send a smaller message, or reach the contact another way.",
    ),
    "553": ErrorInfo(
        "Mailbox name not allowed",
        "The address is not valid, or the server will not relay for our sender address.",
        "Check the recipient and the inbox's from address.",
    ),
    "554": ErrorInfo(
        "Transaction failed",
        "The server refused the message, often as spam or by policy.",
        "Read the detail for the server's reason.",
    ),
    "555": ErrorInfo(
        "Parameters not recognised",
        "The server refused a MAIL or RCPT parameter.",
        "Check the addresses; report this if it persists.",
    ),
    # Enhanced status codes (RFC 3463)
    "4.0.0": ErrorInfo(
        "Temporary delivery problem",
        "Delivery failed for now; the server did not say why.",
        "Tickmark retries automatically.",
        permanent=False,
    ),
    "5.0.0": ErrorInfo(
        "Delivery failed",
        "Delivery failed permanently; the server did not give a specific reason.",
        "Read the detail for the server's text.",
    ),
    "5.1.0": ErrorInfo(
        "Bad address",
        "Something is wrong with the recipient's address.",
        "Check the address for typos.",
    ),
    "5.1.1": ErrorInfo(
        "Mailbox does not exist",
        "The recipient's mail server says there is no such user at this address.",
        "Check the address for typos; stop sending to it if it is right.",
    ),
    "5.1.2": ErrorInfo(
        "Domain does not exist",
        "The part after the @ does not name a domain that receives mail.",
        "Check the domain of the address for typos.",
    ),
    "5.1.3": ErrorInfo(
        "Invalid address syntax",
        "The recipient's address is not a valid email address.",
        "Correct the address.",
    ),
    "5.1.10": ErrorInfo(
        "Domain accepts no mail",
        "The recipient's domain publishes a null MX: it receives no email at all.",
        "Ask the contact for another address.",
    ),
    "5.2.1": ErrorInfo(
        "Mailbox disabled",
        "The recipient's mailbox exists but no longer accepts mail.",
        "Ask the contact for another address.",
    ),
    "4.2.2": ErrorInfo(
        "Mailbox full",
        "The recipient's mailbox is full for now.",
        "Tickmark retries automatically; the contact needs to free some space.",
        permanent=False,
    ),
    "5.2.2": ErrorInfo(
        "Mailbox full",
        "The recipient's mailbox is full and the server gave up.",
        "Try again later or reach the contact another way.",
    ),
    "5.2.3": ErrorInfo(
        "Message too large",
        "The message is larger than the recipient's server accepts.",
        "Send a smaller message.",
    ),
    "5.3.4": ErrorInfo(
        "Message too big for the system",
        "The message exceeds a size limit of the receiving system.",
        "Send a smaller message.",
    ),
    "4.4.1": ErrorInfo(
        "No answer from the recipient's server",
        "The recipient's mail server did not answer.",
        "Tickmark's mail server keeps retrying.",
        permanent=False,
    ),
    "5.4.1": ErrorInfo(
        "Recipient address rejected",
        "The recipient's server refused the address (access denied or no such domain route).",
        "Check the address.",
    ),
    "5.4.4": ErrorInfo(
        "Unable to route",
        "No mail server could be found for the recipient's domain.",
        "Check the domain of the address.",
    ),
    "4.4.7": ErrorInfo(
        "Delivery time expired",
        "The mail server kept trying but could not deliver before giving up.",
        "The recipient's server may be down; try again later or use another channel.",
    ),
    "5.4.7": ErrorInfo(
        "Delivery time expired",
        "The message could not be delivered in time.",
        "Try again later or use another channel.",
    ),
    "5.5.0": ErrorInfo(
        "Protocol error",
        "The mail servers disagreed about the SMTP conversation.",
        "Read the detail; report it if it persists.",
    ),
    "4.7.0": ErrorInfo(
        "Temporarily refused by policy",
        "The recipient's server deferred the message (rate limit or greylisting).",
        "Tickmark's mail server retries.",
        permanent=False,
    ),
    "5.7.0": ErrorInfo(
        "Refused by security policy",
        "The recipient's server refused the message for a security reason.",
        "Read the detail for the server's reason.",
    ),
    "5.7.1": ErrorInfo(
        "Delivery not authorised",
        "The recipient's server refused the message by policy — often spam filtering, or the "
        "sender is not allowed to relay.",
        "Read the detail; check the sender address and the message content.",
    ),
    "5.7.8": ErrorInfo(
        "Authentication credentials invalid",
        "The mail server rejected the SMTP login.",
        "Check the SMTP username and password.",
    ),
    "5.7.26": ErrorInfo(
        "Sender authentication failed",
        "The recipient's provider refused the message because it failed SPF, DKIM or DMARC "
        "checks for the sender's domain.",
        "Set up SPF, DKIM and DMARC for the from address's domain.",
    ),
    # Tickmark's own conditions
    "invalid_message": ErrorInfo(
        "Message cannot be sent as email",
        "An address or the subject is not valid in an email header.",
        "Check the recipient address and subject.",
    ),
    "tls_failed": ErrorInfo(
        "TLS with the mail server failed",
        "The mail server does not offer STARTTLS or its certificate is not trusted.",
        "Check the SMTP host, port and TLS setting.",
    ),
    **_http.transport_errors(
        "the mail server",
        reach="the SMTP server",
        connect_hint="Tickmark retries automatically; check the SMTP host and port if it persists.",
        lost_answer="The message was being handed over when the connection broke, so it may have "
        "gone out.",
        lost_answer_hint="Check with the contact before resending, to avoid a duplicate.",
    ),
}
