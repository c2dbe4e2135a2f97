"""Meta's error tables (WhatsApp reference §1.4, Messenger/Instagram §4.4) and error bodies."""

from __future__ import annotations

from typing import Any

from statuses.providers.base import (
    ConsentScope,
    ErrorInfo,
)
from statuses.providers.meta.wire import as_object

# Reference §1.4 (titles agree across BSP mirrors and SDK hint tables). ``permanent=False``
# marks the codes where the same message can succeed later: send() retries those.
WHATSAPP_ERRORS: dict[str, ErrorInfo] = {
    "131026": ErrorInfo(
        "Message undeliverable",
        "The number is not on WhatsApp, has not accepted the latest terms, runs an outdated "
        "app, or cannot receive business messages.",
        "Check the number with the contact; resending the same message will not help.",
    ),
    "131047": ErrorInfo(
        "Re-engagement message",
        "More than 24 hours have passed since the contact last wrote: only approved templates "
        "may be sent.",
        "Send an approved template instead of free text.",
    ),
    "131049": ErrorInfo(
        "Not delivered to maintain healthy ecosystem engagement",
        "Meta held back this marketing message because the contact has received too many.",
        "Do not resend for at least 24 hours.",
    ),
    "131050": ErrorInfo(
        "Contact stopped marketing messages",
        "The contact has chosen to stop receiving marketing messages from this business.",
        "Stop sending marketing templates to this contact.",
        opts_out=ConsentScope.MARKETING,
    ),
    "131051": ErrorInfo(
        "Unsupported message type",
        "WhatsApp does not support this kind of message.",
        "Send a supported message type (text, media, template).",
    ),
    "130472": ErrorInfo(
        "Contact is part of an experiment",
        "Meta held back this marketing template because the number is in a Meta experiment; "
        "it is not billed.",
        "Do not resend: it would fail the same way.",
    ),
    "131000": ErrorInfo(
        "Something went wrong",
        "WhatsApp reported an unspecified error.",
        "Try again later.",
        permanent=False,
    ),
    "131048": ErrorInfo(
        "Spam rate limit hit",
        "Too many of this business's messages were blocked or reported, so sending is limited.",
        "Slow down and review message quality.",
        permanent=False,
    ),
    "131056": ErrorInfo(
        "Pair rate limit hit",
        "Too many messages to the same contact in a short time (about one every 6 seconds).",
        "Wait a few seconds before sending to this contact again.",
        permanent=False,
    ),
    "130429": ErrorInfo(
        "Rate limit hit",
        "The phone number's Cloud API throughput limit was reached.",
        "Send more slowly; the message will be retried.",
        permanent=False,
    ),
    "131052": ErrorInfo(
        "Media download error",
        "WhatsApp could not download the media the contact sent.",
        "Ask the contact to send the file again.",
    ),
    "131053": ErrorInfo(
        "Media upload error",
        "WhatsApp could not fetch or process the media in this message.",
        "Check the media URL, type and size.",
    ),
    "131042": ErrorInfo(
        "Business eligibility payment issue",
        "The WhatsApp Business Account has a payment problem.",
        "An admin should fix the payment method in Meta Business Manager.",
    ),
    "131031": ErrorInfo(
        "Account locked",
        "The business account is locked or restricted.",
        "An admin should check the account's status in Meta Business Manager.",
    ),
    "132000": ErrorInfo(
        "Template parameter count mismatch",
        "The template was sent with a different number of variables than it defines.",
        "Send exactly the variables the template expects.",
    ),
    "132001": ErrorInfo(
        "Template does not exist",
        "No approved template with this name and language exists.",
        "Check the template name, language code and approval status.",
    ),
    "132005": ErrorInfo(
        "Template hydrated text too long",
        "The template text with its variables filled in is too long.",
        "Shorten the variable values.",
    ),
    "132007": ErrorInfo(
        "Template format character policy violated",
        "The template content violates WhatsApp's formatting policy.",
        "Fix the template's variables or formatting.",
    ),
    "132012": ErrorInfo(
        "Template parameter format mismatch",
        "A template variable has the wrong format.",
        "Match each variable to the type the template defines.",
    ),
    "132015": ErrorInfo(
        "Template is paused",
        "The template was paused because of low quality.",
        "Edit the template or use another one.",
    ),
    "132016": ErrorInfo(
        "Template is disabled",
        "The template was disabled because of repeated low quality.",
        "Create a new template.",
    ),
    "133010": ErrorInfo(
        "Phone number not registered",
        "The business phone number is not registered with the Cloud API.",
        "An admin should register the number before sending.",
    ),
    "368": ErrorInfo(
        "Temporarily blocked for policy violations",
        "The account is temporarily blocked for violating WhatsApp policies.",
        "An admin should review the policy notice in Meta Business Manager.",
    ),
    # Common request errors (Graph API) a misconfigured inbox produces at send time.
    "100": ErrorInfo(
        "Invalid parameter",
        "The request had a missing or invalid parameter.",
        "Check the recipient number and message content.",
    ),
    "190": ErrorInfo(
        "Access token expired or invalid",
        "The inbox's access token no longer works.",
        "An admin should update the access token in the inbox settings.",
    ),
    "131009": ErrorInfo(
        "Parameter value is not valid",
        "A value in the message is not valid (for example the recipient number).",
        "Check the recipient number and message content.",
    ),
    "131021": ErrorInfo(
        "Recipient cannot be sender",
        "The message was addressed to the business number itself.",
        "Send to the contact's number.",
    ),
    # Common codes of Meta's public error list beyond the reference's table (issue #9).
    "0": ErrorInfo(
        "Authentication exception",
        "Meta could not authenticate the app user (token or permission problem).",
        "An admin should generate a new access token.",
    ),
    "3": ErrorInfo(
        "API method not allowed",
        "The app lacks the capability or permission for this call.",
        "An admin should check the app's permissions in the Meta App Dashboard.",
    ),
    "4": ErrorInfo(
        "Too many API calls",
        "The app reached its call rate limit.",
        "Send more slowly; the message will be retried.",
        permanent=False,
    ),
    "10": ErrorInfo(
        "Permission denied",
        "The permission was not granted or has been removed.",
        "An admin should grant the WhatsApp permissions to the app again.",
    ),
    "80007": ErrorInfo(
        "Rate limit issues",
        "The WhatsApp Business Account reached its rate limit.",
        "Send more slowly; the message will be retried.",
        permanent=False,
    ),
    "130497": ErrorInfo(
        "Business account restricted for this country",
        "The business may not message users in the contact's country.",
        "Reach this contact through another channel.",
    ),
    "131005": ErrorInfo(
        "Access denied",
        "The permission for this call was not granted or was removed.",
        "An admin should check the app's permissions and the token.",
    ),
    "131008": ErrorInfo(
        "Required parameter is missing",
        "The request lacked a parameter WhatsApp requires.",
        "Check the message content and template variables.",
    ),
    "131016": ErrorInfo(
        "Service unavailable",
        "WhatsApp is temporarily unavailable.",
        "Try again later; the message will be retried.",
        permanent=False,
    ),
    "131037": ErrorInfo(
        "Display name approval needed",
        "The business phone number's display name is not approved yet.",
        "An admin should get the display name approved in WhatsApp Manager.",
    ),
    "131045": ErrorInfo(
        "Incorrect certificate",
        "The phone number is not registered correctly (certificate problem).",
        "An admin should register the phone number again.",
    ),
    "131057": ErrorInfo(
        "Account in maintenance mode",
        "The business account is in maintenance mode (e.g. a throughput upgrade).",
        "Wait a few minutes and send again.",
        permanent=False,
    ),
    "133004": ErrorInfo(
        "Server temporarily unavailable",
        "WhatsApp's server is temporarily unavailable for this phone number.",
        "Try again later.",
        permanent=False,
    ),
    "133006": ErrorInfo(
        "Phone number re-verification needed",
        "The business phone number must be verified again before it can send.",
        "An admin should verify the number again in WhatsApp Manager.",
    ),
}


def whatsapp_error(errors: list[Any], catalogue: dict[str, ErrorInfo]) -> tuple[str, str, str]:
    """Return (code, title, detail) of the first entry of a WhatsApp ``errors[]`` array."""
    if not errors:
        return "", "", ""
    first = as_object(errors[0], "errors[]")
    code = first.get("code")
    code_text = str(code) if code is not None else ""
    info = catalogue.get(code_text)
    title = first.get("title") or (info.title if info else "")
    data = first.get("error_data")
    detail = (data.get("details") if isinstance(data, dict) else None) or first.get("message")
    return code_text, str(title or ""), str(detail or "")


# Messenger/Instagram Send API errors (reference §4.4); ``code/subcode`` keys are more specific.
GRAPH_MESSAGING_ERRORS: dict[str, ErrorInfo] = {
    "2": ErrorInfo(
        "Temporary send failure",
        "Meta could not send the message right now (this is also reported when the person "
        "has blocked the Page).",
        "It will be retried; if it keeps failing the person may have blocked the Page.",
        permanent=False,
    ),
    "4": ErrorInfo(
        "Application rate limit reached",
        "The app made too many calls.",
        "Sending slows down and retries automatically.",
        permanent=False,
    ),
    "613": ErrorInfo(
        "Rate limit reached",
        "Too many messages were sent in a short time.",
        "Sending slows down and retries automatically.",
        permanent=False,
    ),
    "10": ErrorInfo(
        "Permission denied",
        "The app may not send this message.",
        "Check the Page's messaging permissions.",
    ),
    "10/2018278": ErrorInfo(
        "Outside the allowed messaging window",
        "More than 24 hours have passed since the person last wrote.",
        "Send a tagged message (template) instead of free text.",
    ),
    "100": ErrorInfo(
        "Invalid parameter",
        "The request had a missing or invalid parameter.",
        "Check the recipient id and message content.",
    ),
    "100/2018001": ErrorInfo(
        "No matching user found",
        "The recipient id does not belong to anyone this Page can message.",
        "Check the recipient id; it must be the id the Page received from this person.",
    ),
    "190": ErrorInfo(
        "Access token expired or invalid",
        "The inbox's access token no longer works.",
        "An admin should update the access token in the inbox settings.",
    ),
    "200": ErrorInfo(
        "Permission error",
        "The token lacks a permission needed to send messages.",
        "An admin should grant the messaging permission to the app.",
    ),
    "551": ErrorInfo(
        "Person unavailable",
        "This person is not available to receive messages right now.",
        "Do not resend; try another channel.",
    ),
    # Common codes of Meta's public Send API error list beyond the reference (issue #9).
    "1200": ErrorInfo(
        "Temporary send message failure",
        "Meta could not send the message right now.",
        "It will be retried automatically.",
        permanent=False,
    ),
    "10/2018108": ErrorInfo(
        "Person cannot receive messages",
        "This person is not receiving messages from the Page right now.",
        "Do not resend; try another channel.",
    ),
}


def graph_error(
    body: dict[str, Any], catalogue: dict[str, ErrorInfo], *, with_subcode: bool
) -> tuple[str, str, str, bool]:
    """Return (code, title, detail, transient) from a Graph (or 360dialog) error body."""
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        code_text = str(code) if code is not None else ""
        subcode = error.get("error_subcode")
        specific = f"{code_text}/{subcode}" if subcode is not None else code_text
        info = catalogue.get(specific) or catalogue.get(code_text)
        if with_subcode and subcode is not None:
            code_text = specific
        data = error.get("error_data")
        details = data.get("details") if isinstance(data, dict) else None
        title = error.get("message") or (info.title if info else "")
        detail = details or error.get("error_user_msg") or ""
        transient = error.get("is_transient") is True or (info is not None and not info.permanent)
        return code_text, str(title), str(detail), transient
    errors = body.get("errors")  # 360dialog's On-Premise-style errors
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code_text = str(first.get("code", ""))
        info = catalogue.get(code_text)
        title = first.get("title") or (info.title if info else "")
        detail = first.get("details") or first.get("message") or ""
        return code_text, str(title), str(detail), info is not None and not info.permanent
    return "", "", "", False
