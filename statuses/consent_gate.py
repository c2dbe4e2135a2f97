"""The worker's last check before a send leaves (DESIGN §14): the contact may have opted out
while the message waited in the queue (a STOP that arrived after the agent pressed Send).

Run inside the send's claim transaction, with the message locked: a refused message ends
``failed`` with ``contact_opted_out`` (or ``contact_opted_out_marketing``) through the status
writer, no send try is written and the provider is never called.
"""

from __future__ import annotations

from inbox import consent
from inbox.models import Contact, Message
from statuses import services
from statuses.errors import error_info
from statuses.providers.base import SendOutcome, SendResult


def send_refused(message: Message, contact: Contact | None = None) -> bool:
    """Record the refusal of ``message`` if its contact opted out; say whether it was.

    ``contact``: the contact as read in the claim's own statement (``sending._claim``); without
    it the contact is read now — never from a conversation cached earlier: the opt-out may be
    seconds old.
    """
    if contact is None:
        contact = Contact.objects.get(id=message.conversation.contact_id)
    known = message.template_ref if message.template_ref_id else None
    category = consent.template_category(message.template, known)
    refused = consent.refusal(contact=contact, category=category)
    if refused is None:
        return False
    info = error_info(message.channel_type, refused.code)
    services.message_record_send_result(
        message_id=message.id,
        attempt=message.attempt,
        result=SendResult(
            SendOutcome.REJECTED,
            error_code=refused.code,
            error_title=info.title if info else "",
            error_detail=refused.message,
        ),
    )
    return True
