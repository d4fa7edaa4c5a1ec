"""Where GA4's fields come from by default, and which events each action takes (the presets).

Segment's e-commerce spec maps onto GA4's recommended events one to one; a page is a page_view;
any other track is a custom event named after it (made GA4-valid when it is sent). Everything
here is data: the field defaults are mapping-kit directives, compiled once at load.
"""

from __future__ import annotations

from collector.destinations.actions.destination import Preset

# The key of an event's ``integrations`` object where our analytics.js puts the GA cookie's ids.
INTEGRATION = "Google Analytics 4"


def path(where: str) -> dict:
    return {"@path": where}


def first_of(*paths: str) -> dict:
    """The value at the first of ``paths`` that exists (``a ?? b ?? c``)."""
    value: dict = path(paths[-1])
    for where in reversed(paths[:-1]):
        value = {"@if": {"exists": path(where), "then": path(where), "else": value}}
    return value


# The browser's GA client id (the _ga cookie, sent by our analytics.js), else the anonymousId,
# else the userId. Segment's default is userId ?? anonymousId: events of a visitor who logs in
# would then leave the visitor's GA sessions for a new client.
CLIENT_ID = first_of(f"$.integrations['{INTEGRATION}'].clientId", "$.anonymousId", "$.userId")
# The GA session (the _ga_<container> cookie), when the browser sent it.
SESSION_ID = path(f"$.integrations['{INTEGRATION}'].sessionId")


def _item(prefix: str, *, with_index: bool) -> dict:
    """A Segment product (at ``prefix``) as a GA4 item."""
    item = {
        "item_id": first_of(f"{prefix}product_id", f"{prefix}sku"),
        "item_name": path(f"{prefix}name"),
        "item_brand": path(f"{prefix}brand"),
        "item_category": path(f"{prefix}category"),
        "item_variant": path(f"{prefix}variant"),
        "price": path(f"{prefix}price"),
        "quantity": path(f"{prefix}quantity"),
        "coupon": path(f"{prefix}coupon"),
        "affiliation": path(f"{prefix}affiliation"),
    }
    if with_index:
        item["index"] = path(f"{prefix}position")
    return item


# properties.products[] as items (Order Completed, Cart Viewed, Product List Viewed ...).
ITEMS_FROM_PRODUCTS = {"@arrayPath": ["$.properties.products", _item("$.", with_index=True)]}
# The event's own properties as its single item (Product Viewed, Product Added ...).
ITEM_FROM_PROPERTIES = [_item("$.properties.", with_index=False)]
# An order's value: Segment's total, else its revenue.
ORDER_VALUE = first_of("$.properties.total", "$.properties.revenue")
CHECKOUT_VALUE = first_of("$.properties.value", "$.properties.total", "$.properties.revenue")


def _track(event: str) -> str:
    return f'type = "track" and event = "{event}"'


# Segment's spec event -> (preset name, action). The preset is named after the spec event.
SPEC_EVENTS: dict[str, str] = {
    "Products Searched": "search",
    "Product List Viewed": "view_item_list",
    "Product Clicked": "select_item",
    "Product Viewed": "view_item",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Cart Viewed": "view_cart",
    "Checkout Started": "begin_checkout",
    "Payment Info Entered": "add_payment_info",
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Promotion Viewed": "view_promotion",
    "Promotion Clicked": "select_promotion",
    "Product Added to Wishlist": "add_to_wishlist",
    "Signed Up": "sign_up",
    "Signed In": "login",
}

_OTHER_TRACKS = 'type = "track" and !(event in [' + ", ".join(f'"{e}"' for e in SPEC_EVENTS) + "])"

PRESETS: tuple[Preset, ...] = (
    Preset("Page Calls", "page_view", 'type = "page"'),
    *(Preset(event, action, _track(event)) for event, action in SPEC_EVENTS.items()),
    Preset("Custom Event", "custom_event", _OTHER_TRACKS),
)
