"""PostHog: every Segment call type to PostHog's capture API (``POST {endpoint}/batch/``).

Settings: the project's ``api_key`` (``phc_...``, sent in the body) and the ``endpoint``, which is
required: PostHog Cloud is in two regions (https://us.i.posthog.com, https://eu.i.posthog.com)
and self-hosted PostHog is anywhere, so no default would be right for everyone.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from collector.destinations.actions.destination import ActionDestination, ActionSettings
from collector.destinations.actions.settings import Secret
from collector.destinations.posthog.actions import ACTIONS
from collector.destinations.posthog.presets import PRESETS

__all__ = ["PostHog", "PostHogSettings"]

CLOUD_HOSTS = ("https://us.i.posthog.com", "https://eu.i.posthog.com")


class PostHogSettings(ActionSettings, tag="posthog", kw_only=True):
    # The project API key (Project settings: "Project API key", phc_...).
    api_key: Secret
    # The project's id. Capture finds the project from api_key and does not need it; Segment's
    # PostHog destination requires it, so a configuration carried over from there keeps it.
    project_id: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # true for a backfill of past events: PostHog ingests them on its historical path (its docs
    # ask for it on imports; talk to PostHog before importing more than 20M events).
    historical_migration: bool = False

    example: ClassVar[dict[str, Any]] = {
        "type": "posthog",
        "api_key": "${POSTHOG_API_KEY}",
        "endpoint": "https://eu.i.posthog.com",
    }

    def __post_init__(self) -> None:
        if self.endpoint is None:
            raise ValueError(
                f"endpoint is required for posthog: {CLOUD_HOSTS[0]} (US Cloud), {CLOUD_HOSTS[1]} (EU Cloud), "
                "or your self-hosted PostHog's scheme://host[:port]")
        if self.api_key.startswith("phx_"):
            raise ValueError("api_key: phx_... is a personal API key, which capture refuses; "
                             "use the project API key (phc_...)")


class PostHog(ActionDestination):
    """Send events, page and screen views, identifies, groups and aliases to PostHog's capture API."""

    Config = PostHogSettings
    display_name = "PostHog"
    actions = ACTIONS
    presets = PRESETS
    config: PostHogSettings
