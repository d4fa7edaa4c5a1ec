"""The subscriptions a Braze destination starts with.

Segment's Braze Cloud Mode (Actions) subscribes identify to Update User Profile, every track but
Order Completed to Track Event and Order Completed to Track Purchase. Ours does the same and adds
audiences: "Audience Entered" / "Audience Exited" tracks, and identifies computed for an audience
(context.personas.computation_class = "audience"), set a boolean custom attribute named after the
audience instead of being sent as events and attributes. A page call becomes the custom event
"Viewed <name> Page" ("Viewed Page" when unnamed), its properties and name as properties, as
Segment's classic Braze destination sends named pages; drop the preset to leave pages out.
"""

from __future__ import annotations

import copy

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import default_mapping
from collector.destinations.braze.actions import AUDIENCE_FIELDS, EVENT_FIELDS

__all__ = ["PAGE_MAPPING", "PRESETS", "audience_mapping"]

_AUDIENCE_EVENTS = ("Audience Entered", "Audience Exited")
_AUDIENCE_IDENTIFY = 'context.personas.computation_class = "audience"'


def audience_mapping(member: bool) -> dict:
    return {**copy.deepcopy(default_mapping(AUDIENCE_FIELDS)), "in_audience": member}


PAGE_MAPPING = {
    **copy.deepcopy(default_mapping(EVENT_FIELDS)),
    "name": {"@if": {"blank": {"@path": "$.name"}, "then": {"@template": "Viewed {{name}} Page"},
                     "else": "Viewed Page"}},
    "properties": {"@merge": {"objects": [{"name": {"@path": "$.name"}, "category": {"@path": "$.category"}},
                                          {"@path": "$.properties"}]}},
}

PRESETS = (
    Preset("Identify Calls", "update_user_profile", f'type = "identify" and !({_AUDIENCE_IDENTIFY})'),
    Preset("Track Calls", "track_event",
           'type = "track" and event != "Order Completed" and '
           + " and ".join(f'event != "{name}"' for name in _AUDIENCE_EVENTS)),
    Preset("Page Calls", "track_event", 'type = "page"', PAGE_MAPPING),
    Preset("Order Completed Calls", "track_purchase", 'type = "track" and event = "Order Completed"'),
    Preset("Audience Entered", "sync_audience", 'type = "track" and event = "Audience Entered"',
           audience_mapping(True)),
    Preset("Audience Exited", "sync_audience", 'type = "track" and event = "Audience Exited"',
           audience_mapping(False)),
    Preset("Audience Identify Calls", "sync_audience", f'type = "identify" and {_AUDIENCE_IDENTIFY}'),
)
