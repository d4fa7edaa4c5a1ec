"""The fields of Amplitude's actions, with the defaults that make their presets.

They follow Segment's Amplitude (Actions) destination (``event-schema.ts``, ``logEventV2``,
``logPurchase``, ``identifyUser``, ``groupIdentifyUser``, ``mapUser``), with these changes:

- ``insert_id`` defaults to the messageId, so that a retried or replayed event is deduplicated by
  Amplitude (7 days); Segment leaves it empty.
- ``session_id`` is also read where the older browser plugin (``context.amplitude_session_id``) and
  Segment's classic destination (``integrations.Amplitude.session_id``) put it; a session start in
  epoch seconds becomes milliseconds, where Segment would send it as milliseconds of 1970.
- Products keep every property (name, sku, category ...) on their "Product Purchased" event, and
  ``productId`` is read from ``product_id`` (Segment's e-commerce spec) as well as ``productId``;
  Segment's default keeps five keys and reads ``productId`` only.
- The purchase's ``revenue`` falls back to ``total`` when the order has no ``revenue``.
- The campaign and the referrer are two fields (``campaign``, the whole context.campaign, and
  ``referrer``) that become ``$set`` utm_*/referrer and ``$setOnce`` initial_utm_*/initial_referrer,
  as Segment's Identify User and Log Purchase do; Segment's Log Event V2 maps twelve paths for the
  same. Other operations are written in ``user_properties`` (``{"$setOnce": {...}}``) or ``add``.
- Revenue fields belong to ``log_purchase`` only: on any other event Amplitude would count a
  ``price`` (a "Product Added", say) as revenue. Segment's Log Event V2 declares them and drops them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from collector.destinations.actions.fields import Field


def _path(path: str) -> dict[str, str]:
    return {"@path": path}


def _first(*paths: str) -> dict[str, Any]:
    """The first of these paths that holds a value (not null or missing)."""
    value: Any = _path(paths[-1])
    for path in reversed(paths[:-1]):
        value = {"@if": {"exists": _path(path), "then": _path(path), "else": value}}
    return value


USER_ID = Field("string", "The user's ID (Amplitude: at least 5 characters, or min_id_length). Required unless "
                "device_id is present.", allow_null=True, default=_path("$.userId"))
DEVICE_ID = Field("string", "The device's ID: context.device.id, else the anonymousId. Required unless user_id "
                  "is present.", default=_first("$.context.device.id", "$.anonymousId"))
LIBRARY = Field("string", "The library that sent the event, shown by Amplitude ('segment' when unknown).",
                default=_path("$.context.library.name"))

CAMPAIGN = Field("object", "The campaign (Segment's context.campaign: source, medium, name, term, content), set "
                 "as utm_* user properties, and as initial_utm_* when they have no value yet.",
                 default=_path("$.context.campaign"))
REFERRER = Field("string", "The referrer, set as the referrer user property, and as initial_referrer when it has no "
                 "value yet.", default=_path("$.context.page.referrer"))
ADD = Field("object", "User properties to increment by a number ($add).")

# Where a device or user is: shared by events and identifications.
_DEVICE = {
    "app_version": Field("string", "The app's version.", default=_path("$.context.app.version")),
    "platform": Field("string", "The platform ('Web' for analytics.js when absent).",
                      default=_path("$.context.device.type")),
    "os_name": Field("string", "The operating system or browser.", default=_path("$.context.os.name")),
    "os_version": Field("string", "Its version.", default=_path("$.context.os.version")),
    "device_brand": Field("string", "The device's brand.", default=_path("$.context.device.brand")),
    "device_manufacturer": Field("string", "The device's manufacturer.",
                                 default=_path("$.context.device.manufacturer")),
    "device_model": Field("string", "The device's model.", default=_path("$.context.device.model")),
    "carrier": Field("string", "The mobile carrier.", default=_path("$.context.network.carrier")),
    "country": Field("string", "The country.", default=_path("$.context.location.country")),
    "region": Field("string", "The region.", default=_path("$.context.location.region")),
    "city": Field("string", "The city.", default=_path("$.context.location.city")),
    "dma": Field("string", "The Designated Market Area."),
    "language": Field("string", "The language.", default=_path("$.context.locale")),
}

EVENT_FIELDS: MappingProxyType[str, Field] = MappingProxyType({
    "user_id": USER_ID,
    "device_id": DEVICE_ID,
    "event_type": Field("string", "The event's name in Amplitude.", required=True, default=_path("$.event")),
    "time": Field("datetime", "When it happened (sent as epoch milliseconds).", default=_path("$.timestamp")),
    "session_id": Field(
        "datetime", "The start of the session (sent as epoch milliseconds): set by Segment's browser plugin in "
        "integrations['Actions Amplitude'].session_id.",
        default=_first("$.integrations['Actions Amplitude'].session_id", "$.context.amplitude_session_id",
                       "$.integrations.Amplitude.session_id")),
    "insert_id": Field("string", "Amplitude ignores an event whose insert_id it saw in the last 7 days: the "
                       "messageId by default (Segment sends none).", default=_path("$.messageId")),
    "event_properties": Field("object", "The event's properties.", default=_path("$.properties")),
    "user_properties": Field("object", "The user's properties (plain values are set; $set, $setOnce ... "
                             "operations are kept).", default=_path("$.traits")),
    "groups": Field("object", "Event-level groups, {group type: group value} (Accounts add-on).",
                    default=_path("$.integrations.Amplitude.groups")),
    **_DEVICE,
    "location_lat": Field("number", "Latitude.", default=_path("$.context.location.latitude")),
    "location_lng": Field("number", "Longitude.", default=_path("$.context.location.longitude")),
    "ip": Field("string", "The user's IP address ('$remote': the request's).", default=_path("$.context.ip")),
    "idfa": Field("string", "The iOS advertising ID.",
                  default=_first("$.context.device.advertisingId", "$.context.device.idfa")),
    "idfv": Field("string", "The iOS vendor ID.", default=_path("$.context.device.id")),
    "adid": Field("string", "The Google Play advertising ID.",
                  default=_first("$.context.device.advertisingId", "$.context.device.idfa")),
    "android_id": Field("string", "The Android ID."),
    "event_id": Field("integer", "A counter that orders events with the same user and time."),
    "library": LIBRARY,
    "campaign": CAMPAIGN,
    "referrer": REFERRER,
    "add": ADD,
})

_PRODUCT = {
    "price": Field("number", "The product's price."),
    "quantity": Field("number", "How many (rounded to a whole number)."),
    "revenue": Field("number", "The product's revenue, when price and quantity are not both given."),
    "product_id": Field("string", "The product's ID (Segment's e-commerce spec)."),
    "productId": Field("string", "The product's ID (older spelling)."),
    "revenueType": Field("string", "The type of revenue ('Purchase' when absent)."),
}

PURCHASE_FIELDS: MappingProxyType[str, Field] = MappingProxyType({
    **EVENT_FIELDS,
    "price": Field("number", "The price; revenue is price x quantity when both are given.",
                   default=_path("$.properties.price")),
    "quantity": Field("number", "The quantity (rounded to a whole number).", default=_path("$.properties.quantity")),
    "revenue": Field("number", "The order's revenue: properties.revenue, else properties.total.",
                     default=_first("$.properties.revenue", "$.properties.total")),
    "productId": Field("string", "The product's ID.",
                       default=_first("$.properties.product_id", "$.properties.productId")),
    "revenueType": Field("string", "The type of revenue ('Purchase' when absent).",
                         default=_path("$.properties.revenueType")),
    "products": Field("object", "The products: one 'Product Purchased' event each, with all their properties.",
                      multiple=True, properties=_PRODUCT, default=_path("$.properties.products")),
    "track_revenue_per_product": Field(
        "boolean", "Revenue on each 'Product Purchased' event instead of once on the order.", default=False),
})

IDENTIFY_FIELDS: MappingProxyType[str, Field] = MappingProxyType({
    "user_id": USER_ID,
    "device_id": DEVICE_ID,
    "user_properties": Field("object", "The traits, set as user properties.", default=_path("$.traits")),
    "groups": Field("object", "Groups of the user, {group type: group value} (Accounts add-on)."),
    **_DEVICE,
    "paying": Field("boolean", "Whether the user is paying."),
    "start_version": Field("string", "The app version the user started with."),
    "library": LIBRARY,
    "campaign": CAMPAIGN,
    "referrer": REFERRER,
})

GROUP_FIELDS: MappingProxyType[str, Field] = MappingProxyType({
    "user_id": USER_ID,
    "device_id": DEVICE_ID,
    "group_type": Field("string", "The group's type ('[Segment] Group', as Segment's classic destination, "
                        "unless mapped).", required=True, default="[Segment] Group"),
    "group_value": Field("string", "The group's value.", required=True, default=_path("$.groupId")),
    "group_properties": Field("object", "The group's properties.", default=_path("$.traits")),
    "library": LIBRARY,
})

MAP_USER_FIELDS: MappingProxyType[str, Field] = MappingProxyType({
    "user_id": Field("string", "The user ID to map (the alias's previousId).", required=True,
                     default=_path("$.previousId")),
    "global_user_id": Field("string", "The global user ID it maps to (the alias's userId).", required=True,
                            default=_path("$.userId")),
})
