"""The explicit provider registry: channel_type → adapter module.

Adding a provider means adding its module and one line here, and nothing else.
"""

from __future__ import annotations

from types import ModuleType

REGISTRY: dict[str, ModuleType] = {}


def get(channel_type: str) -> ModuleType:
    return REGISTRY[channel_type]
