"""The channel catalogue (DESIGN §4): families, what each channel reports, terminal rules."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from statuses.providers import SPECS
from statuses.providers.base import Channel


class ChannelType(models.TextChoices):
    WEB_WIDGET = "web_widget", "Web widget"
    API = "api", "API"
    WHATSAPP_CLOUD = "whatsapp_cloud", "WhatsApp Cloud API"
    TWILIO_WHATSAPP = "twilio_whatsapp", "WhatsApp via Twilio"
    WHATSAPP_360DIALOG = "whatsapp_360dialog", "WhatsApp via 360dialog"
    FACEBOOK = "facebook", "Facebook Messenger"
    TIKTOK = "tiktok", "TikTok"
    TWILIO_SMS = "twilio_sms", "SMS via Twilio"
    BANDWIDTH_SMS = "bandwidth_sms", "SMS via Bandwidth"
    INSTAGRAM = "instagram", "Instagram"
    TELEGRAM = "telegram", "Telegram"
    LINE = "line", "LINE"
    EMAIL = "email", "Email"
    VIBER = "viber", "Viber"


class Family(models.TextChoices):
    WEB = "WEB", "Web"
    API = "API", "API"
    WHATSAPP = "WHATSAPP", "WhatsApp"
    FACEBOOK = "FACEBOOK", "Facebook"
    TIKTOK = "TIKTOK", "TikTok"
    SMS = "SMS", "SMS"
    INSTAGRAM = "INSTAGRAM", "Instagram"
    TELEGRAM = "TELEGRAM", "Telegram"
    LINE = "LINE", "LINE"
    EMAIL = "EMAIL", "Email"
    VIBER = "VIBER", "Viber"


# The table of channels, built from the provider specs: each provider declares its channels
# (family, what they report, time to live) in its ``SPEC``.
_DECLARED = {c.channel_type: c for spec in SPECS for c in spec.channels}
# ChannelType is the database's vocabulary (choices, the ``inbox_channel_type_valid`` check):
# a new provider adds its channel type there with the migration, and this check holds them
# together at start-up.
if set(_DECLARED) != set(ChannelType.values):
    raise ImproperlyConfigured(
        f"channel types without a provider spec or without a ChannelType: "
        f"{sorted(set(_DECLARED) ^ set(ChannelType.values))}"
    )
CHANNELS: dict[str, Channel] = {ct: _DECLARED[ct] for ct in ChannelType.values}
if unknown := {c.family for c in CHANNELS.values()} - set(Family.values):
    raise ImproperlyConfigured(f"provider channels name unknown families: {sorted(unknown)}")

FAMILY_SLUGS: dict[str, str] = {family.lower(): family for family in Family.values}


def channel(channel_type: str) -> Channel:
    return CHANNELS[channel_type]


def is_terminal(status: str, channel_type: str) -> bool:
    return CHANNELS[channel_type].is_terminal(status)


def channel_types_of(family: str) -> list[str]:
    return [c.channel_type for c in CHANNELS.values() if c.family == family]
