"""Why a message failed, for people — and whether resending it can help.

The one place that answers both questions for any (channel type, error code): the provider's
error table (its ``ProviderSpec.errors``) first, then Tickmark's own codes (sweeps,
the send loop). The agent view's Resend button and the analytics bulk resend both ask
``resend_helps``: an error whose cause is on our side or passing (rate limits, outages, a message
that expired while the phone was off) is worth retrying; one about the contact or the content
(blocked, invalid number, outside the 24-hour window) is not — resending would fail the same way.
"""

from __future__ import annotations

from statuses import providers
from statuses.providers.base import ErrorInfo

# Codes Tickmark itself records (statuses/sweeps.py, statuses/sending.py, campaigns), on any
# channel.
TICKMARK_ERRORS: dict[str, ErrorInfo] = {
    "expired": ErrorInfo(
        "Not delivered in time",
        "The channel did not confirm delivery before the message expired (the phone may have "
        "been off or out of coverage).",
        "Check that the contact can still be reached, then resend.",
        permanent=False,
    ),
    "send_retries_exhausted": ErrorInfo(
        "The provider kept failing",
        "Every automatic retry met a temporary provider error (rate limit, outage).",
        "Check the provider's status page; resend once it has recovered.",
        permanent=False,
    ),
    "worker_lost": ErrorInfo(
        "Outcome unknown",
        "The worker stopped while the request was in flight, so the provider may or may not "
        "have the message.",
        "Look at the conversation before resending: the contact may already have it.",
        permanent=True,
    ),
    # A campaign's cancel ends its unsent messages with this code (statuses.campaigns.lifecycle).
    # Permanent: a bulk resend of failures must not quietly restart a cancelled campaign.
    "cancelled": ErrorInfo(
        "Campaign cancelled",
        "The campaign was cancelled before this message was handed to the provider.",
        "Nothing was sent; start a new campaign to reach this contact.",
        permanent=True,
    ),
    "adapter_error": ErrorInfo(
        "Sending failed unexpectedly",
        "Tickmark's code for this channel raised an error; the provider may not have the message.",
        "Report it to your administrator; resending would most likely fail the same way.",
        permanent=True,
    ),
}

UNKNOWN_ERROR = ErrorInfo(
    "Could not be sent",
    "The provider reported a failure without a code Tickmark knows.",
    "Open one of the messages to read the provider's own words.",
)


def error_info(channel_type: str, code: str) -> ErrorInfo | None:
    """The catalogue's explanation of ``code`` on ``channel_type``, if it has one."""
    spec = providers.REGISTRY.get(channel_type)
    catalogue = spec.errors if spec else {}
    info = catalogue.get(code)
    if info is None and "." in code and code[:1] in "45":  # enhanced SMTP status: class fallback
        info = catalogue.get(f"{code[0]}.0.0")
    return info or TICKMARK_ERRORS.get(code)


def resend_helps(channel_type: str, code: str, *, when_unknown: bool = False) -> bool:
    """Whether resending a message that failed with ``code`` may succeed.

    A code the catalogue does not know (or no code) answers ``when_unknown``: the agent's own
    Resend of one message stays possible (``True``), the bulk resend offers only what the
    catalogue vouches for (``False``).
    """
    info = error_info(channel_type, code) if code else None
    return when_unknown if info is None else info.resend_helps
