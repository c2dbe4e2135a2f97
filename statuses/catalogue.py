"""The channel catalogue (DESIGN §4): families, what each channel reports, terminal rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import models

from statuses.machine import ALWAYS_TERMINAL, PROGRESS_RANK, Status


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


@dataclass(frozen=True)
class Channel:
    channel_type: str
    family: str
    reports_sent: bool
    reports_delivered: bool
    reports_read: bool
    reports_failed: bool
    how: str
    # Free-form messages need an inbound message from the contact within 24 h.
    has_service_window: bool = False
    # How long a message may stay below "delivered" before a sweep marks it expired.
    time_to_live: timedelta = timedelta(days=7)

    @property
    def highest_status(self) -> str:
        if self.reports_read:
            return Status.READ
        if self.reports_delivered:
            return Status.DELIVERED
        return Status.SENT

    def is_terminal(self, status: str) -> bool:
        if status in ALWAYS_TERMINAL:
            return True
        rank = PROGRESS_RANK.get(status)
        return rank is not None and rank >= PROGRESS_RANK[self.highest_status]

    @property
    def capabilities(self) -> dict[str, bool]:
        return {
            "sent": self.reports_sent,
            "delivered": self.reports_delivered,
            "read": self.reports_read,
            "failed": self.reports_failed,
        }


def _c(channel_type: str, family: str, flags: str, how: str, **extra) -> Channel:
    sent, delivered, read, failed = (flag == "Y" for flag in flags)
    return Channel(channel_type, family, sent, delivered, read, failed, how, **extra)


CT, F = ChannelType, Family
CHANNELS: dict[str, Channel] = {
    c.channel_type: c
    for c in [
        _c(CT.WEB_WIDGET, F.WEB, "YYYY", "the widget acks receipt and reports reading"),
        _c(CT.API, F.API, "YYYY", "integrator reports via REST"),
        _c(
            CT.WHATSAPP_CLOUD,
            F.WHATSAPP,
            "YYYY",
            "Meta webhook statuses[]",
            has_service_window=True,
            time_to_live=timedelta(days=30),
        ),
        _c(
            CT.TWILIO_WHATSAPP,
            F.WHATSAPP,
            "YYYY",
            "Twilio status callback",
            has_service_window=True,
            time_to_live=timedelta(days=30),
        ),
        _c(
            CT.WHATSAPP_360DIALOG,
            F.WHATSAPP,
            "YYYY",
            "Meta-format webhook via 360dialog",
            has_service_window=True,
            time_to_live=timedelta(days=30),
        ),
        _c(
            CT.FACEBOOK,
            F.FACEBOOK,
            "YYYY",
            "delivery/read watermarks",
            has_service_window=True,
        ),
        _c(CT.TIKTOK, F.TIKTOK, "YNYY", "read watermark"),
        _c(CT.TWILIO_SMS, F.SMS, "YYNY", "Twilio status callback", time_to_live=timedelta(days=3)),
        _c(
            CT.BANDWIDTH_SMS,
            F.SMS,
            "YYNY",
            "Bandwidth callback array",
            time_to_live=timedelta(days=3),
        ),
        _c(
            CT.INSTAGRAM,
            F.INSTAGRAM,
            "YNYY",
            "read of a mid (watermark)",
            has_service_window=True,
        ),
        _c(CT.TELEGRAM, F.TELEGRAM, "YNNY", "send response only"),
        _c(CT.LINE, F.LINE, "YYNY", "send response only"),
        _c(CT.EMAIL, F.EMAIL, "YNNY", "SMTP result, then bounces"),
        _c(CT.VIBER, F.VIBER, "YYYY", "Viber callbacks delivered/seen/failed"),
    ]
}
assert set(CHANNELS) == set(ChannelType.values)

FAMILY_SLUGS: dict[str, str] = {family.lower(): family for family in Family.values}


def channel(channel_type: str) -> Channel:
    return CHANNELS[channel_type]


def is_terminal(status: str, channel_type: str) -> bool:
    return CHANNELS[channel_type].is_terminal(status)


def channel_types_of(family: str) -> list[str]:
    return [c.channel_type for c in CHANNELS.values() if c.family == family]
