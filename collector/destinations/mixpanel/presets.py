"""The subscriptions a Mixpanel destination starts with: Segment's, with unnamed pages fixed.

Segment names a page event "Viewed {{name}}", which for a page without a name is "Viewed " (one
event for every unnamed page, under a name that says nothing). Here an unnamed page is
"Loaded a Page" and an unnamed screen "Loaded a Screen", the names Segment's classic Mixpanel
destination used. Alias has an action but, as at Segment, no preset: ``$create_alias`` only
does something in Mixpanel projects on Original or Legacy ID management (README: how to add it).
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import default_mapping
from collector.destinations.mixpanel import fields


def viewed(unnamed: str) -> dict[str, Any]:
    """The event name of a page or screen: "Viewed <name>", or ``unnamed`` when it has no name
    (``blank``, as in Segment's mapping kit, takes ``then`` when the value is *not* blank)."""
    return {"@if": {"blank": {"@path": "$.name"}, "then": {"@template": "Viewed {{name}}"}, "else": unnamed}}


PRESETS = (
    Preset("Track Calls", "track_event", 'type = "track" and event != "Order Completed"'),
    Preset("Order Completed Calls", "track_purchase", 'type = "track" and event = "Order Completed"'),
    Preset("Page Calls", "track_event", 'type = "page"',
           {**default_mapping(fields.EVENT), "event": viewed("Loaded a Page")}),
    Preset("Screen Calls", "track_event", 'type = "screen"',
           {**default_mapping(fields.EVENT), "event": viewed("Loaded a Screen")}),
    Preset("Identify Calls", "identify_user", 'type = "identify"'),
    Preset("Group Calls", "group_identify_user", 'type = "group"'),
)
