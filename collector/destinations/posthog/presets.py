"""The subscriptions a PostHog destination starts with: one per Segment call type.

Segment's PostHog destination subscribes track, page and screen (identify has no subscription,
group and alias no action), takes userId only and sends receivedAt as the time. Ours sends every
call type, anonymous events too, with the event's own timestamp and its messageId as uuid.
"""

from __future__ import annotations

import copy

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import default_mapping
from collector.destinations.posthog.actions import EVENT_FIELDS, first_of

__all__ = ["PAGE_MAPPING", "PRESETS", "SCREEN_MAPPING"]



def _event_defaults() -> dict:
    """The event action's defaults, copied: objects shared between presets would print as YAML
    anchors in the catalogue."""
    return copy.deepcopy(default_mapping(EVENT_FIELDS))


# A page call carries its page in properties (server SDKs) and in context.page (analytics.js):
# properties first. Its name and category are Segment's own fields; they join the properties.
PAGE_MAPPING = {
    **_event_defaults(),
    "event": "$pageview",
    "properties": {"@merge": {"objects": [
        {"name": {"@path": "$.name"}, "category": {"@path": "$.category"}},
        {"@path": "$.properties"},
    ]}},
    "current_url": first_of("$.properties.url", "$.context.page.url"),
    "pathname": first_of("$.properties.path", "$.context.page.path"),
    "referrer": first_of("$.properties.referrer", "$.context.page.referrer"),
    "title": first_of("$.properties.title", "$.context.page.title"),
}

SCREEN_MAPPING = {
    **_event_defaults(),
    "event": "$screen",
    "screen_name": {"@path": "$.name"},
}

PRESETS = (
    Preset("Track Calls", "event", 'type = "track"'),
    Preset("Page Calls", "event", 'type = "page"', PAGE_MAPPING),
    Preset("Screen Calls", "event", 'type = "screen"', SCREEN_MAPPING),
    Preset("Identify Calls", "identify", 'type = "identify"'),
    Preset("Group Calls", "group", 'type = "group"'),
    Preset("Alias Calls", "alias", 'type = "alias"'),
)
