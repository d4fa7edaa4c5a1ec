"""The subscriptions a Mixpanel destination starts with: Segment's, with unnamed pages fixed.

Segment names a page event "Viewed {{name}}", which for a page without a name is "Viewed " (one
event for every unnamed page, under a name that says nothing). Here an unnamed page is
"Loaded a Page" and an unnamed screen "Loaded a Screen", the names Segment's classic Mixpanel
destination used. Alias has an action but, as at Segment, no preset: ``$create_alias`` only
does something in Mixpanel projects on Original or Legacy ID management (README: how to add it).
"""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import Field, default_mapping
from collector.destinations.mixpanel import fields


def viewed(unnamed: str) -> dict[str, Any]:
    """The event name of a page or screen: "Viewed <name>", or ``unnamed`` when it has no name
    (``blank``, as in Segment's mapping kit, takes ``then`` when the value is *not* blank)."""
    return {"@if": {"blank": {"@path": "$.name"}, "then": {"@template": "Viewed {{name}}"}, "else": unnamed}}


def mapping(of: dict[str, Field], **changed: Any) -> dict[str, Any]:
    """The fields' defaults with some changed; a copy of its own, so that no two presets share a
    value (the catalogue would print shared ones as YAML aliases)."""
    return copy.deepcopy({**default_mapping(of), **changed})


PRESETS = (
    Preset("Track Calls", "track_event", 'type = "track" and event != "Order Completed"', mapping(fields.EVENT)),
    Preset("Order Completed Calls", "track_purchase", 'type = "track" and event = "Order Completed"',
           mapping(fields.PURCHASE)),
    Preset("Page Calls", "track_event", 'type = "page"', mapping(fields.EVENT, event=viewed("Loaded a Page"))),
    Preset("Screen Calls", "track_event", 'type = "screen"', mapping(fields.EVENT, event=viewed("Loaded a Screen"))),
    Preset("Identify Calls", "identify_user", 'type = "identify"', mapping(fields.IDENTIFY)),
    Preset("Group Calls", "group_identify_user", 'type = "group"', mapping(fields.GROUP)),
)
