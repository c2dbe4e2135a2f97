"""The explicit provider registry: channel_type → adapter module.

Adding a provider means adding its module and one line here, and nothing else.
"""

from __future__ import annotations

from types import ModuleType

from statuses.providers import (
    api,
    bandwidth,
    email,
    facebook,
    instagram,
    line,
    telegram,
    tiktok,
    twilio,
    viber,
    web_widget,
    whatsapp_360dialog,
    whatsapp_cloud,
)

REGISTRY: dict[str, ModuleType] = {
    "whatsapp_cloud": whatsapp_cloud,
    "whatsapp_360dialog": whatsapp_360dialog,
    "twilio_sms": twilio,
    "twilio_whatsapp": twilio,
    "facebook": facebook,
    "instagram": instagram,
    "tiktok": tiktok,
    "bandwidth_sms": bandwidth,
    "line": line,
    "telegram": telegram,
    "viber": viber,
    "email": email,
    "api": api,
    "web_widget": web_widget,
}


def get(channel_type: str) -> ModuleType:
    return REGISTRY[channel_type]


def error_retryable(channel_type: str, error_code: str) -> bool:
    """Whether resending a message that failed with ``error_code`` can succeed.

    The one place the agent UI, the resend service and bulk resend ask. A code the catalogue
    marks permanent (number not on WhatsApp, unsubscribed, invalid number…) fails the same way
    again; an unknown or empty code might not, so it stays retryable.
    """
    if not error_code:
        return True
    module = REGISTRY.get(channel_type)
    info = getattr(module, "ERRORS", {}).get(error_code) if module else None
    return info is None or info.retryable
