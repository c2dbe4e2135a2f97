"""The explicit provider registry: channel type → ``ProviderSpec``.

Each provider module (or package) declares itself whole in one ``SPEC``
(``statuses.providers.base.ProviderSpec``): its channels (family, which statuses each reports,
time to live), config schema (required, optional, secret keys), the signature headers kept with
a recorded delivery, whether a lost send may be repeated, how long it retries a webhook,
``verify``/``handshake``/``parse``/``send``, its reconcile lookup and its error table.
Everything else reads the specs through this module: the channel catalogue
(``statuses.catalogue.CHANNELS`` is built from them), the API and admin config forms, secret
masking, ingestion, the send loop, the sweeps, ``statuses.errors``.

Adding a provider means:

1. its module or package under ``statuses/providers/`` with a ``SPEC``;
2. one line in ``SPECS`` below (and its import);
3. its channel type(s) in ``ChannelType`` (``statuses/catalogue.py``, the database's
   vocabulary) and the migration for the ``inbox_channel_type_valid`` check constraint
   (``makemigrations inbox``) — plus a ``Family`` there only if it starts a new family.

Start-up (``statuses.catalogue``) and ``tests/providers/test_registry.py`` fail until these
agree. Not needed for the provider to work, but per provider: a fake in
``statuses/simulator/`` for the demo, seed data in ``inbox/management/commands/seed_demo.py``,
and its tests and fixtures under ``tests/``.
"""

from __future__ import annotations

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
from statuses.providers.base import ProviderSpec

SPECS: tuple[ProviderSpec, ...] = (
    web_widget.SPEC,
    api.SPEC,
    whatsapp_cloud.SPEC,
    twilio.SPEC,
    whatsapp_360dialog.SPEC,
    facebook.SPEC,
    tiktok.SPEC,
    bandwidth.SPEC,
    instagram.SPEC,
    telegram.SPEC,
    line.SPEC,
    email.SPEC,
    viber.SPEC,
)

REGISTRY: dict[str, ProviderSpec] = {
    channel_type: spec for spec in SPECS for channel_type in spec.channel_types
}
if len(REGISTRY) != sum(len(spec.channel_types) for spec in SPECS):
    raise ImportError("two provider specs claim the same channel type")


def get(channel_type: str) -> ProviderSpec:
    return REGISTRY[channel_type]


def secret_keys() -> frozenset[str]:
    """Config keys that are secret for any provider: masked everywhere, whatever the inbox (a
    key secret for one provider is never shown for another either)."""
    return frozenset().union(*(spec.config.secret for spec in SPECS))


def kept_headers(channel_type: str) -> frozenset[str]:
    """The provider headers kept with a delivery recorded for ``channel_type``."""
    spec = REGISTRY.get(channel_type)
    return spec.kept_headers if spec else frozenset()
