"""Which destinations an event goes to: its source, consent, then its `integrations` object."""

from __future__ import annotations

from collector.destinations.base import DestinationConfig, RoutingFields


def consent_allows(routing: RoutingFields, categories: list[str]) -> bool:
    """A destination mapped to consent categories receives an event only if the event grants all of
    them. No consent object: no enforcement. An empty categoryPreferences: every category denied."""
    if not categories:
        return True
    consent = routing.context.consent if routing.context is not None else None
    if not isinstance(consent, dict):
        return True
    preferences = consent.get("categoryPreferences")
    if not isinstance(preferences, dict):
        return True
    return all(preferences.get(category) is True for category in categories)


def integrations_allow(routing: RoutingFields, integration_name: str) -> bool:
    """Segment's rule: `All` defaults to true; a destination named `false` is off; with
    `All: false` only destinations named `true` (or given an options object) receive the event."""
    integrations = routing.integrations
    if not isinstance(integrations, dict):
        return True
    if integration_name in integrations:
        setting = integrations[integration_name]
        return setting is not False and setting is not None
    return integrations.get("All", True) is not False


def should_deliver(routing: RoutingFields, source: str, config: DestinationConfig, integration_name: str) -> bool:
    if config.sources is not None and source not in config.sources:
        return False
    return consent_allows(routing, config.consent_categories) and integrations_allow(routing, integration_name)
