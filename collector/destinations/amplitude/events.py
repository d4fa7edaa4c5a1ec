"""Validated payloads into Amplitude's records: events for the HTTP V2 API, identifications for
/identify and /groupidentify, mappings for /usermap.

Date-time fields arrive normalised (``YYYY-MM-DDTHH:MM:SS.mmmZ``, see actions/fields.py) and
leave as epoch milliseconds. User properties: plain values are set; when there are operations
too ($set, $setOnce, $add: the referrer and campaign, say), the plain values join ``$set``, since
Amplitude takes no plain values beside operations (its Identify API refuses them; Segment's Log
Event V2 mixes them).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

# Payload keys that are not Amplitude's own, or that are rewritten here.
_EVENT_OWN = frozenset({
    "time", "session_id", "campaign", "referrer", "add", "library", "platform", "user_properties",
    "price", "quantity", "revenue", "productId", "revenueType", "products", "track_revenue_per_product",
})
_IDENTIFY_OWN = frozenset({"campaign", "referrer", "library", "platform", "user_properties"})
# What a "Product Purchased" event does not repeat from its order.
_NOT_PER_PRODUCT = frozenset({"event_type", "event_properties", "user_properties", "insert_id", "revenue", "price",
                              "quantity", "productId", "revenueType"})
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
PRODUCT_EVENT = "Product Purchased"


def epoch_ms(moment: str) -> int:
    """``2024-11-28T13:26:00.123Z`` (the fields' normal form) -> 1732800360123."""
    days = date(int(moment[0:4]), int(moment[5:7]), int(moment[8:10])).toordinal() - _EPOCH_ORDINAL
    seconds = days * 86400 + int(moment[11:13]) * 3600 + int(moment[14:16]) * 60 + int(moment[17:19])
    return seconds * 1000 + int(moment[20:23])


def _platform(payload: dict) -> str | None:
    platform = payload.get("platform")
    if platform:
        lowered = platform.lower()
        return "iOS" if lowered == "ios" else "Android" if lowered == "android" else platform
    return "Web" if payload.get("library") == "analytics.js" else None


# Segment's context.campaign keys -> Amplitude's user properties.
_UTM = (("source", "utm_source"), ("medium", "utm_medium"), ("name", "utm_campaign"), ("term", "utm_term"),
        ("content", "utm_content"))


def _attribution(payload: dict) -> dict:
    """The campaign's utm_* and the referrer, those that hold a value."""
    found = {}
    campaign = payload.get("campaign")
    if campaign:
        for key, name in _UTM:
            value = campaign.get(key)
            if value is not None and value != "":
                found[name] = value
    referrer = payload.get("referrer")
    if referrer:
        found["referrer"] = referrer
    return found


def user_properties(payload: dict) -> dict | None:
    """The user_properties to send: plain values as they are, or, with the campaign, the referrer
    or ``add``, every operation together ($set utm_* and referrer, $setOnce initial_*)."""
    plain = payload.get("user_properties") or {}
    attribution = _attribution(payload)
    add = payload.get("add")
    if not (attribution or add):
        return plain or None
    operations: dict[str, Any] = {}
    values = {}
    for key, value in plain.items():
        if key.startswith("$"):
            operations[key] = value
        else:
            values[key] = value
    first = {f"initial_{name}": value for name, value in attribution.items()}
    for operation, ours, theirs in (("$set", attribution, values), ("$setOnce", first, None), ("$add", add, None)):
        given = operations.get(operation)
        merged = {**(ours or {}), **(theirs or {}), **(given if isinstance(given, dict) else {})}
        if merged:
            operations[operation] = merged
    return operations


def _common(payload: dict, own: frozenset[str]) -> dict:
    record = {key: value for key, value in payload.items() if key not in own}
    platform = _platform(payload)
    if platform is not None:
        record["platform"] = platform
    properties = user_properties(payload)
    if properties is not None:
        record["user_properties"] = properties
    record["library"] = payload.get("library") or "segment"
    return record


def event(payload: dict) -> dict:
    """One Amplitude event from a log_event payload."""
    record = _common(payload, _EVENT_OWN)
    moment = payload.get("time")
    if moment is not None:
        record["time"] = epoch_ms(moment)
    session = payload.get("session_id")
    if session is not None:
        started = epoch_ms(session)
        record["session_id"] = started if started >= 0 else -1  # -1: Amplitude's "no session"
    return record


def _number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def revenue_fields(values: dict, product_id: Any) -> dict:
    """Amplitude's revenue keys, as Segment's logPurchase computes them: revenue is price x
    quantity when both are numbers; nothing when there is no revenue."""
    price, quantity, revenue = values.get("price"), values.get("quantity"), values.get("revenue")
    if _number(price) and _number(quantity):
        revenue = price * quantity
    if not revenue:
        return {}
    fields: dict[str, Any] = {"revenue": revenue, "revenueType": values.get("revenueType") or "Purchase"}
    if _number(quantity):
        fields["quantity"] = math.floor(quantity + 0.5)  # JavaScript's Math.round
    if price is not None:
        fields["price"] = price
    if product_id is not None:
        fields["productId"] = product_id
    return fields


def purchase_events(payload: dict) -> list[dict]:
    """The order's event, then one "Product Purchased" event per product (insert_id ``<id>-2``,
    ``<id>-3`` ... as Segment's). Revenue is on the order, or on each product with
    ``track_revenue_per_product``. The order's properties leave out the products, which have
    their own events."""
    main = event(payload)
    products = payload.get("products") or []
    per_product = bool(payload.get("track_revenue_per_product")) and bool(products)
    if not per_product:
        main.update(revenue_fields(payload, payload.get("productId")))
    if products:
        properties = main.get("event_properties")
        if isinstance(properties, dict) and "products" in properties:
            main["event_properties"] = {k: v for k, v in properties.items() if k != "products"}
    events = [main]
    if not products:
        return events
    shared = {key: value for key, value in main.items() if key not in _NOT_PER_PRODUCT}
    insert_id = main.get("insert_id")
    for product in products:
        record = {**shared, "event_type": PRODUCT_EVENT, "event_properties": product}
        if insert_id:
            record["insert_id"] = f"{insert_id}-{len(events) + 1}"
        if per_product:
            record.update(revenue_fields(product, product.get("product_id", product.get("productId"))))
        events.append(record)
    return events


def identification(payload: dict) -> dict:
    """One /identify identification from an identify_user payload."""
    return _common(payload, _IDENTIFY_OWN)


def group_association(payload: dict) -> dict:
    """The /identify identification that puts the user in the group (a user property too)."""
    group = {payload["group_type"]: payload["group_value"]}
    record = {"groups": group, "user_properties": dict(group), "library": payload.get("library") or "segment"}
    for key in ("user_id", "device_id"):
        if payload.get(key) is not None:
            record[key] = payload[key]
    return record


def group_identification(payload: dict) -> dict:
    """The /groupidentify identification that sets the group's properties."""
    return {"group_type": payload["group_type"], "group_value": payload["group_value"],
            "group_properties": payload.get("group_properties") or {},
            "library": payload.get("library") or "segment"}
