"""Mixpanel's records built from a validated payload: events for /import, updates for /engage and
/groups. Pure functions of the payload (and of the stored event, for a stable fallback id and time).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from collector.destinations.base import Envelope
from collector.destinations.mixpanel.useragent import browser

# Mixpanel's reserved event properties: never taken from the event's own properties.
RESERVED = frozenset({"time", "id", "distinct_id", "$insert_id", "$user_id", "$anon_id", "$group_id"})
# The order's totals, which its per-product events leave out (Segment's list).
ORDER_TOTALS = frozenset({"affiliation", "subtotal", "total", "revenue", "shipping", "tax", "discount", "coupon",
                          "currency", "order_number", "products"})
PRODUCT_PURCHASED = "Product Purchased"

# Mixpanel's $insert_id: "36 characters or fewer, alphanumeric or '-'".
_INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)

# payload key -> event property
_FLAT = (("ip", "ip"), ("name", "event_original_name"), ("url", "$current_url"), ("referrer", "$referrer"),
         ("language", "$locale"), ("timezone", "timezone"))
# payload object -> ((its key, event property), ...)
_NESTED = (
    ("library", (("name", "mp_lib"), ("version", "$lib_version"))),
    ("app", (("name", "$app_name"), ("namespace", "$app_namespace"), ("build", "$app_build_number"),
             ("version", "$app_version_string"), ("platform", "app_platform"))),
    ("os", (("name", "$os"), ("version", "$os_version"))),
    ("device", (("type", "$device_type"), ("name", "$device"), ("name", "$device_name"),
                ("manufacturer", "$manufacturer"), ("model", "$model"), ("advertisingId", "advertising_id"),
                ("adTrackingEnabled", "ad_tracking_enabled"), ("idfa", "$ios_ifa"), ("advertisingId", "$ios_ifa"))),
    ("network", (("bluetooth", "$bluetooth_enabled"), ("carrier", "$carrier"), ("cellular", "$cellular_enabled"),
                 ("wifi", "$wifi_enabled"))),
    ("screen", (("width", "$screen_width"), ("height", "$screen_height"), ("density", "$screen_density"))),
    ("location", (("country", "mp_country_code"),)),
    ("campaign", (("name", "utm_campaign"), ("source", "utm_source"), ("medium", "utm_medium"),
                  ("term", "utm_term"), ("content", "utm_content"))),
    ("userAgentData", (("mobile", "$mobile"), ("platform", "$platform"), ("bitness", "$bitness"),
                       ("platformVersion", "$platformVersion"), ("uaFullVersion", "$uaFullVersion"),
                       ("wow64", "$wow64"))),
)

# Segment's user traits that Mixpanel knows under its own names.
_PROFILE_NAMES = {"email": "$email", "firstName": "$first_name", "lastName": "$last_name", "username": "$username",
                  "phone": "$phone"}
_CREATED = ("created", "createdAt", "created_at")


def insert_id(value: Any, envelope: Envelope, salt: str = "") -> str:
    """A $insert_id Mixpanel takes, the same on every retry: the messageId when it fits the format
    (and there is no salt), else the first 36 hex digits of the SHA-256 of the messageId (of the
    stored event, when there is none) and the salt."""
    if isinstance(value, str) and value:
        if not salt and _INSERT_ID.fullmatch(value) is not None:
            return value
        seed = value.encode()
    else:
        seed = envelope.raw
    return hashlib.sha256(seed + salt.encode()).hexdigest()[:36]


def milliseconds(payload: dict, envelope: Envelope) -> int:
    """The payload's ``time`` (validated: YYYY-MM-DDTHH:MM:SS.mmmZ) in epoch milliseconds; when it
    has none, the time the collector received the event (stable across retries, unlike "now")."""
    text = payload.get("time")
    if text is None:
        return envelope.received_ms
    return (datetime.fromisoformat(text) - _EPOCH) // _MILLISECOND


def event_properties(payload: dict, envelope: Envelope) -> dict[str, Any]:
    """The properties of a track/page/screen event: context first, the event's own properties over
    them, Mixpanel's reserved ones last."""
    properties: dict[str, Any] = {}
    for key, name in _FLAT:
        value = payload.get(key)
        if value is not None:
            properties[name] = value
    for key, pairs in _NESTED:
        section = payload.get(key)
        if section:
            for inner, name in pairs:
                value = section.get(inner)
                if value is not None:
                    properties[name] = value
    user_agent = payload.get("userAgent")
    if user_agent:
        name, version = browser(user_agent)
        if name is not None:
            properties["$browser"] = name
        if version is not None:
            properties["$browser_version"] = version
    anonymous_id, user_id = payload.get("anonymous_id"), payload.get("user_id")
    if anonymous_id:
        properties["$device_id"] = anonymous_id
    if user_id:
        properties["$identified_id"] = user_id
    own = payload.get("event_properties")
    if own:
        for key, value in own.items():
            if key not in RESERVED:
                properties[key] = value
    if anonymous_id:
        properties["$anon_id"] = anonymous_id
    if user_id:
        properties["$user_id"] = user_id
    group_id = payload.get("group_id")
    if group_id is not None:
        properties["$group_id"] = group_id
    properties["time"] = milliseconds(payload, envelope)
    properties["distinct_id"] = payload.get("distinct_id", "")
    properties["$insert_id"] = insert_id(payload.get("insert_id"), envelope)
    return properties


def event_record(payload: dict, envelope: Envelope) -> dict[str, Any]:
    return {"event": payload["event"], "properties": event_properties(payload, envelope)}


def purchase_records(payload: dict, envelope: Envelope) -> list[dict[str, Any]]:
    """The order's event, then (unless generatePurchaseEventPerProduct is false) one "Product
    Purchased" event per product: the order's properties without its totals, the product's keys
    over them, each 1 ms earlier than the one before and with its own stable $insert_id."""
    order = event_record(payload, envelope)
    products = payload.get("products")
    if not products or payload.get("generatePurchaseEventPerProduct") is False:
        return [order]
    base = {key: value for key, value in order["properties"].items() if key not in ORDER_TOTALS}
    time, message_id = base["time"], payload.get("insert_id")
    records = [order]
    for i, product in enumerate(products, start=1):
        properties = dict(base)
        for key, value in product.items():
            if key not in RESERVED:
                properties[key] = value
        properties["time"] = time - i
        properties["$insert_id"] = insert_id(message_id, envelope, f"#product-{i}")
        records.append({"event": PRODUCT_PURCHASED, "properties": properties})
    return records


def identify_record(payload: dict, envelope: Envelope) -> dict[str, Any] | None:
    """``$identify`` (Original ID Merge) for an identify that names both ids; with $user_id and
    $device_id it also merges under Simplified ID Merge. None when there is nothing to merge."""
    user_id, anonymous_id = payload.get("user_id"), payload.get("anonymous_id")
    if not user_id or not anonymous_id or user_id == anonymous_id:
        return None
    return {"event": "$identify", "properties": {
        "distinct_id": user_id, "$identified_id": user_id, "$anon_id": anonymous_id, "$user_id": user_id,
        "$device_id": anonymous_id, "time": milliseconds(payload, envelope),
        "$insert_id": insert_id(payload.get("insert_id"), envelope)}}


def alias_record(payload: dict, envelope: Envelope) -> dict[str, Any]:
    return {"event": "$create_alias", "properties": {
        "distinct_id": payload["distinct_id"], "alias": payload["alias"], "time": milliseconds(payload, envelope),
        "$insert_id": insert_id(payload.get("insert_id"), envelope)}}


def profile_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """Segment's traits with Mixpanel's names for the ones it knows ($email, $name, $created ...)."""
    out: dict[str, Any] = {}
    for key, value in traits.items():
        if key in _CREATED or key == "name":
            continue
        out[_PROFILE_NAMES.get(key, key)] = value
    name = traits.get("name")
    if name is None and traits.get("firstName") and traits.get("lastName"):
        name = f"{traits['firstName']} {traits['lastName']}"
    if name is not None:
        out["$name"] = name
    created = _created(traits)
    if created is not None:
        out["$created"] = created
    return out


def group_traits(traits: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in traits.items() if key not in _CREATED and key != "name"}
    if traits.get("name") is not None:
        out["$name"] = traits["name"]
    created = _created(traits)
    if created is not None:
        out["$created"] = created
    return out


def _created(traits: dict[str, Any]) -> Any:
    for key in _CREATED:
        if traits.get(key) is not None:
            return traits[key]
    return None


def profile_update(payload: dict, token: str) -> dict[str, Any] | None:
    """The /engage ``$set`` of an identify's traits; None when it has none. ``$ip`` is the client's
    address, or "0": without it Mixpanel would geolocate the profile at the collector's address."""
    traits = payload.get("traits")
    if not traits:
        return None
    return {"$token": token, "$distinct_id": payload.get("user_id") or payload.get("anonymous_id"),
            "$ip": payload.get("ip") or "0", "$set": profile_traits(traits)}


def group_update(payload: dict, token: str) -> dict[str, Any]:
    """The /groups ``$set`` of a group call: the group id is the trait named like the group key when
    there is one (Segment's classic behaviour), else the call's groupId."""
    key = payload.get("group_key") or "$group_id"
    traits = payload.get("traits") or {}
    group_id = traits.get(key) or payload["group_id"]
    return {"$token": token, "$group_key": key, "$group_id": group_id, "$set": group_traits(traits)}
