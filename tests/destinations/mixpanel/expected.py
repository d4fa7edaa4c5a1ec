"""What the contract's three stored events (tests/destinations/fakes.py) must become in Mixpanel,
written out by hand from the fact sheet (docs/vendors/analytics-ads.md §2) and Segment's presets."""

from __future__ import annotations

import hashlib
from typing import Any

TOKEN = "mp-token"
SECRET = "mp-secret"

ANONYMOUS = "507f191e-810c-4197-9db3-0c1d0b1b2b3f"
ORDER_MESSAGE = "ajs-next-1732800360123-3c2b2c4a-6f1e-4b9a-9a53-0f6f2f1d7c11"
PAGE_MESSAGE = "ajs-next-1732800361456-9e8d7c6b-5a49-4382-b1c0-d9e8f7a6b5c4"


def hashed(message_id: str) -> str:
    """A messageId longer than Mixpanel's 36 characters: the first 36 hex digits of its SHA-256."""
    return hashlib.sha256(message_id.encode()).hexdigest()[:36]


# The browser context of the order and the page, as Mixpanel properties.
BROWSER = {
    "ip": "203.0.113.7",
    "$current_url": "https://shop.example.com/checkout/complete?utm_source=newsletter",
    "$referrer": "https://shop.example.com/cart",
    "$locale": "de-DE",
    "mp_lib": "analytics.js",
    "$lib_version": "npm:next-1.84.0",
    "$browser": "Chrome",
    "$browser_version": "131.0",
}

PRODUCTS = [
    {"product_id": "507f1f77bcf86cd799439011", "sku": "45790-32", "name": "Monopoly: 3rd Edition", "price": 19,
     "quantity": 1},
    {"product_id": "505bd76785ebb509fc183733", "sku": "46493-32", "name": "Uno Card Game", "price": 3.25,
     "quantity": 2},
]

ORDER = {"event": "Order Completed", "properties": {
    **BROWSER,
    "event_original_name": "Order Completed",
    "order_id": "50314b8e9bcf000000000000", "total": 27.5, "revenue": 25.0, "currency": "EUR", "coupon": None,
    "products": PRODUCTS,
    "$device_id": ANONYMOUS, "$anon_id": ANONYMOUS, "$user_id": "user-4711", "$identified_id": "user-4711",
    "distinct_id": "user-4711", "time": 1732800360123, "$insert_id": hashed(ORDER_MESSAGE),
}}


def product_purchased(n: int) -> dict[str, Any]:
    """The n-th (1-based) "Product Purchased" event of ORDER, but its $insert_id (checked apart)."""
    properties = {key: value for key, value in ORDER["properties"].items()
                  if key not in ("total", "revenue", "currency", "coupon", "products", "$insert_id")}
    properties.update(PRODUCTS[n - 1])
    properties["time"] = 1732800360123 - n
    return {"event": "Product Purchased", "properties": properties}


PAGE = {"event": "Viewed Checkout Complete", "properties": {
    **BROWSER,
    "event_original_name": "Checkout Complete",
    "path": "/checkout/complete", "title": "Bestellung abgeschlossen – Shop",
    "url": "https://shop.example.com/checkout/complete?utm_source=newsletter",
    "$device_id": ANONYMOUS, "$anon_id": ANONYMOUS,
    "distinct_id": ANONYMOUS, "time": 1732800361456, "$insert_id": hashed(PAGE_MESSAGE),
}}

# The identify has a user id but no anonymous id: no $identify, only the profile.
PROFILE_UPDATE = {"$token": TOKEN, "$distinct_id": "user-4711", "$ip": "0", "$set": {
    "$email": "zoë.müller@example.com", "$name": "Zoë Müller", "plan": "pro", "logins": 12,
    "address": {"city": "Köln", "country": "DE"}, "$created": "2023-02-01T09:30:00Z",
}}
