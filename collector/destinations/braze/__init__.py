"""Braze: identifies, events, purchases and audiences to ``POST {endpoint}/users/track``.

Settings: the REST ``api_key`` (Bearer), the ``endpoint``, which is required: every Braze instance
has its own REST host (https://rest.iad-01.braze.com, https://rest.fra-01.braze.eu, ...), shown in
the dashboard, and no default would be right for everyone; optionally the ``app_id`` sent with
events and purchases.
"""

from __future__ import annotations

from typing import Any, ClassVar

from collector.destinations.actions.auth import bearer
from collector.destinations.actions.destination import ActionDestination, ActionSettings
from collector.destinations.actions.settings import Secret
from collector.destinations.braze.actions import ACTIONS
from collector.destinations.braze.presets import PRESETS

__all__ = ["Braze", "BrazeSettings"]


class BrazeSettings(ActionSettings, tag="braze", kw_only=True):
    # A REST API key with the users.track permission (Settings > APIs and Identifiers).
    api_key: Secret
    # The app identifier sent with events and purchases (optional).
    app_id: str | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "braze",
        "api_key": "${BRAZE_API_KEY}",
        "endpoint": "https://rest.iad-01.braze.com",
    }

    def __post_init__(self) -> None:
        if self.endpoint is None:
            raise ValueError(
                "endpoint is required for braze: your instance's REST endpoint, e.g. "
                "https://rest.iad-01.braze.com or https://rest.fra-01.braze.eu (Braze's dashboard "
                "shows it; see braze.com/docs/api/basics/#endpoints)")


class Braze(ActionDestination):
    """Send user attributes, custom events, purchases and audience membership to Braze's /users/track."""

    Config = BrazeSettings
    display_name = "Braze"
    actions = ACTIONS
    presets = PRESETS
    config: BrazeSettings

    def headers(self) -> dict[str, str]:
        return {"Authorization": bearer(self.config.api_key)}
