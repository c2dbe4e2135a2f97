"""A local stand-in for every provider's send API and status webhooks (DESIGN §10)."""

from statuses.simulator.server import ProviderSimulator, Scenario

__all__ = ["ProviderSimulator", "Scenario"]
