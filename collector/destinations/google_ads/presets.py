"""The presets of Google Ads: which events each action takes, and from where its fields come.

Customer Match follows Segment's audience events: ``Audience Entered`` adds the user to the list,
``Audience Exited`` removes them. These two are in force by default.

A conversion cannot be sent without its conversion action, which only the operator knows, so the
"Click Conversion" preset (``Order Completed`` as an offline click conversion) is off until a
mapping of that name gives ``conversion_action`` (``{name: Click Conversion, fields:
{conversion_action: "123456789"}}``); the mapping keeps the preset's trigger and other fields.
Enhanced conversions for web need a website tag that records the same order ids, so they have no
preset: a mapping names the action, its trigger and its conversion action. Segment has no default
subscription for either.
"""

from __future__ import annotations

import copy

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import default_mapping
from collector.destinations.google_ads import fields

AUDIENCE_ENTERED = 'type = "track" and event = "Audience Entered"'
AUDIENCE_EXITED = 'type = "track" and event = "Audience Exited"'
ORDER_COMPLETED = 'type = "track" and event = "Order Completed"'
CLICK_CONVERSION = "Click Conversion"


def _customer_match(operation: str) -> dict:
    return {**copy.deepcopy(default_mapping(fields.CUSTOMER_MATCH)), "operation": operation}


PRESETS = (
    Preset("Audience Entered", "customer_match", AUDIENCE_ENTERED, _customer_match("add")),
    Preset("Audience Exited", "customer_match", AUDIENCE_EXITED, _customer_match("remove")),
    # Off until a mapping of the same name gives conversion_action (see the module docstring).
    Preset(CLICK_CONVERSION, "upload_click_conversion", ORDER_COMPLETED),
)

# The presets in force when the settings do not say (``presets:``).
ACTIVE = ("Audience Entered", "Audience Exited")
