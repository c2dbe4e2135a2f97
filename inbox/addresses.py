"""Whether an address can be sent to on a channel family (the rule ``POST /messages`` applies).

A campaign checks tens of thousands of recipients with it, so it is a plain function returning
the problem (or None) instead of raising.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from statuses.catalogue import Family

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_LENGTH = 320  # Contact.address
_EMAIL = EmailValidator()


def address_problem(family: str, to: str) -> str | None:
    """Why ``to`` (already stripped) is not an address of ``family``, or None if it is."""
    if not to:
        return "An address is required."
    if len(to) > MAX_LENGTH:
        return f"At most {MAX_LENGTH} characters."
    if family in (Family.WHATSAPP, Family.SMS) and not E164.match(to):
        return "An E.164 phone number, e.g. +15551234567."
    if family == Family.EMAIL:
        try:
            _EMAIL(to)
        except ValidationError:
            return "An email address."
    return None
