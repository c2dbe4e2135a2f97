"""Meta's shared wire formats (reference §1, §2, §4, §5).

WhatsApp Cloud (direct or relayed by 360dialog), Messenger and Instagram share the
``X-Hub-Signature-256`` signature, the ``hub.challenge`` handshake, the Graph API error body and,
per family, one webhook envelope:

- WhatsApp: ``entry[].changes[].value`` with ``statuses[]`` and ``messages[]``;
- Messenger platform (Messenger, Instagram): ``entry[].messaging[]`` with ``delivery``, ``read``
  and ``message`` events.

This package is not a provider (it has no ``SPEC`` and is not in the registry); the provider
modules ``whatsapp_cloud``, ``whatsapp_360dialog``, ``facebook`` and ``instagram`` import its
parts: ``verify`` (signature, tokens, handshake), ``wire`` (strict JSON readers), ``errors``
(the error tables and Graph error bodies), ``parse_whatsapp``, ``parse_messaging`` and ``send``
(the Graph send calls, over the provider-neutral ``_http`` plumbing).

WhatsApp group messages: Meta sends one status per participant for the same ``wamid``
(``recipient_type: "group"``, ``recipient_participant_id``). Each participant's status is its own
event (the participant is part of the dedupe key), so the merge rule shows the *furthest* any
participant got: a group message is delivered as soon as one participant has it and read as soon
as one has read it. A per-participant ``failed`` says nothing about the others, and marking the
whole message failed would invite an agent to resend it to everybody, so it is kept (with its
error) as an UNRECOGNIZED event that changes nothing. A ``failed`` without a participant (the
group message as a whole) still fails the message. *Inbound* group messages (``group_id``) are
recorded on the delivery and not stored until groups are supported (DESIGN §5.1).

Real traffic (issue #9, DESIGN §5.1): bodies are parsed entry by entry — a malformed status,
message or event is recorded with its reason (``ParseResult.skipped``) and the rest applied;
only a body that is not a JSON object with the family's arrays is ``MalformedPayload``.
Senders must be addresses: a wa_id is digits, a page-/Instagram-scoped id is digits. Echoes
(Messenger/Instagram ``is_echo``, WhatsApp ``smb_message_echoes``) are outgoing to the
recipient. Deletions (Messenger/Instagram ``is_deleted``; WhatsApp ``type: "revoke"`` or
``"revoked"`` naming the original in ``revoke.id``/``message_id`` or ``context.id``, as BSPs
relay it) become ``Deletion``s of the original. Postbacks, referrals, opt-ins, reactions and
other fields are recorded as ignored; WhatsApp ``value.errors[]`` as provider errors.
"""
