"""The subscriptions a Customer.io destination starts with: one per Segment call type, and the
audience events (Segment Engage's ``Audience Entered`` / ``Audience Exited``) as person attributes."""

from __future__ import annotations

import copy

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import default_mapping
from collector.destinations.customerio.actions import AUDIENCE_FIELDS

__all__ = ["AUDIENCE_EVENTS", "PRESETS"]

AUDIENCE_EVENTS = ("Audience Entered", "Audience Exited")


def _audience(in_audience: bool) -> dict:
    return {**copy.deepcopy(default_mapping(AUDIENCE_FIELDS)), "in_audience": in_audience}


PRESETS = (
    Preset("Identify Calls", "identify", 'type = "identify"'),
    Preset("Track Calls", "event",
           f'type = "track" and event != "{AUDIENCE_EVENTS[0]}" and event != "{AUDIENCE_EVENTS[1]}"'),
    Preset("Page Calls", "page", 'type = "page"'),
    Preset("Screen Calls", "screen", 'type = "screen"'),
    Preset("Group Calls", "object", 'type = "group"'),
    Preset("Alias Calls", "merge", 'type = "alias"'),
    Preset("Audience Entered", "audience", f'type = "track" and event = "{AUDIENCE_EVENTS[0]}"', _audience(True)),
    Preset("Audience Exited", "audience", f'type = "track" and event = "{AUDIENCE_EVENTS[1]}"', _audience(False)),
)
