"""The presets: Segment's e-commerce spec to Meta's standard events, page views, every other track
as a custom event, and Engage audience events to Custom Audience changes. Data only: a trigger and
the fields each preset sets over its action's defaults."""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.actions.destination import Preset
from collector.destinations.actions.fields import default_mapping
from collector.destinations.facebook_conversions.fields import AUDIENCE_FIELDS, EVENT_FIELDS, first_of

# Segment's track event -> Meta's standard event.
STANDARD_EVENTS = {
    "Order Completed": "Purchase",
    "Checkout Started": "InitiateCheckout",
    "Product Added": "AddToCart",
    "Product Viewed": "ViewContent",
    "Products Searched": "Search",
}
AUDIENCE_EVENTS = {"Audience Entered": "add", "Audience Exited": "remove"}

# properties.products[] as Meta's contents.
PRODUCTS = {"@arrayPath": ["$.properties.products", {
    "id": first_of("$.product_id", "$.sku"),
    "quantity": {"@path": "$.quantity"},
    "item_price": {"@path": "$.price"},
}]}
# The product of a Product Added / Viewed event (its properties) as Meta's one content.
PRODUCT = {"@arrayPath": ["$.properties", {
    "id": first_of("$.product_id", "$.sku"),
    "quantity": {"@path": "$.quantity"},
    "item_price": {"@path": "$.price"},
}]}

# Segment's own Meta action takes value from revenue; an order that only has total (or value) is
# not refused for it here.
ORDER_VALUE = first_of("$.properties.revenue", "$.properties.total", "$.properties.value")

_CUSTOM_DATA = {
    "Purchase": {"value": ORDER_VALUE, "contents": PRODUCTS, "order_id": {"@path": "$.properties.order_id"}},
    "InitiateCheckout": {"value": ORDER_VALUE, "contents": PRODUCTS},
    "AddToCart": {"value": {"@path": "$.properties.price"}, "contents": PRODUCT,
                  "content_name": {"@path": "$.properties.name"},
                  "content_category": {"@path": "$.properties.category"}},
    "ViewContent": {"value": {"@path": "$.properties.price"}, "contents": PRODUCT,
                    "content_ids": first_of("$.properties.product_id", "$.properties.sku"),
                    "content_name": {"@path": "$.properties.name"},
                    "content_category": {"@path": "$.properties.category"}},
    "Search": {"search_string": {"@path": "$.properties.query"}},
}

_EVENT_DEFAULTS = default_mapping(EVENT_FIELDS)
_AUDIENCE_DEFAULTS = default_mapping(AUDIENCE_FIELDS)


def _event(name: str, trigger: str, fields: dict[str, Any]) -> Preset:
    # Copies: presets share no objects, so that the catalogue prints each in full.
    return Preset(name, "event", trigger, copy.deepcopy({**_EVENT_DEFAULTS, **fields}))


_OTHERS = ", ".join(f'"{event}"' for event in (*STANDARD_EVENTS, *AUDIENCE_EVENTS))

PRESETS: tuple[Preset, ...] = (
    *(_event(segment_name, f'type = "track" and event = "{segment_name}"',
             {"event_name": meta_name, **_CUSTOM_DATA[meta_name]})
      for segment_name, meta_name in STANDARD_EVENTS.items()),
    _event("Page Calls", 'type = "page"', {"event_name": "PageView"}),
    _event("Custom Events", f'type = "track" and !(event in [{_OTHERS}])',
           {"custom_data": {"@path": "$.properties"}, "value": {"@path": "$.properties.value"}}),
    *(Preset(segment_name, "audience", f'type = "track" and event = "{segment_name}"',
             copy.deepcopy({**_AUDIENCE_DEFAULTS, "operation": operation}))
      for segment_name, operation in AUDIENCE_EVENTS.items()),
)
