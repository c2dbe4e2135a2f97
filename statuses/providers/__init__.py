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
