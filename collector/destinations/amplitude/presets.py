"""Amplitude's presets: Segment's (track, Order Completed, page, screen, identify), as data.

Group and alias calls are not presets, as in Segment: they need Amplitude's Accounts and
Portfolio add-ons. ``GROUP_MAPPING`` and ``ALIAS_MAPPING`` are the mappings that turn them on.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import Field, default_mapping
from collector.destinations.amplitude.fields import EVENT_FIELDS, IDENTIFY_FIELDS, PURCHASE_FIELDS


def _viewed(fallback: str) -> dict[str, Any]:
    """Segment's "Viewed {{name}}", with a name for the pages that have none (Segment sends "Viewed ")."""
    return {"@if": {"blank": {"@path": "$.name"}, "then": {"@template": "Viewed {{name}}"}, "else": fallback}}


def _defaults(fields: Mapping[str, Field], **changes: Any) -> dict[str, Any]:
    """The fields' defaults with these changes, copied: presets share no object, so that the
    catalogue prints each in full (YAML would print a shared one as an alias)."""
    return copy.deepcopy({**default_mapping(fields), **changes})


PRESETS = (
    Preset("Track Calls", "log_event", 'type = "track" and event != "Order Completed"', _defaults(EVENT_FIELDS)),
    Preset("Order Completed Calls", "log_purchase", 'type = "track" and event = "Order Completed"',
           _defaults(PURCHASE_FIELDS)),
    Preset("Page Calls", "log_event", 'type = "page"', _defaults(EVENT_FIELDS, event_type=_viewed("Viewed a Page"))),
    Preset("Screen Calls", "log_event", 'type = "screen"',
           _defaults(EVENT_FIELDS, event_type=_viewed("Viewed a Screen"))),
    Preset("Identify Calls", "identify_user", 'type = "identify"', _defaults(IDENTIFY_FIELDS)),
)

# To paste under the destination's `mappings:` (the README shows them as YAML).
GROUP_MAPPING = {"name": "Group Calls", "action": "group_identify_user", "trigger": 'type = "group"'}
ALIAS_MAPPING = {"name": "Alias Calls", "action": "map_user", "trigger": 'type = "alias"'}
