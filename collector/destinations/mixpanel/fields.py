"""The fields of Mixpanel's actions and where each comes from by default.

Names follow Segment's Mixpanel (Actions) destination where it has the same field, so that a
mapping written for Segment reads the same here. Segment's ~30 separate context fields are
grouped here by the context object they come from (``app``, ``os``, ``device``, ``network``,
``screen``, ``location``, ``library``, ``campaign``, ``userAgentData``): one path each instead of
one per key (the mapping costs about 0.2 us a field per event), and still mappable key by key
(``device: {model: {"@path": "$.properties.model"}}``). Their values go to Mixpanel as they are,
since Mixpanel takes any JSON value there.
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.fields import Field


def path(where: str) -> dict[str, str]:
    return {"@path": where}


def either(first: str, second: str) -> dict[str, Any]:
    return {"@if": {"exists": path(first), "then": path(first), "else": path(second)}}


def _strings(*names: str) -> dict[str, Field]:
    return {name: Field("string") for name in names}


# Where the identity of an event comes from (Segment's identity rules, and Mixpanel's Simplified
# ID Merge properties $device_id / $user_id next to Original ID Merge's $anon_id / $identified_id).
IDENTITY: dict[str, Field] = {
    "distinct_id": Field("string", "Mixpanel's distinct_id: the user id, else the anonymous id (\"\" when there "
                                   "is neither: an event of no user)", default=either("$.userId", "$.anonymousId")),
    "anonymous_id": Field("string", "Sent as $device_id (Simplified ID Merge) and $anon_id",
                          default=path("$.anonymousId")),
    "user_id": Field("string", "Sent as $user_id (Simplified ID Merge) and $identified_id", default=path("$.userId")),
}

# Dedup and time: Mixpanel drops a repeat of event + distinct_id + time + $insert_id.
STAMP: dict[str, Field] = {
    "insert_id": Field("string", "Sent as $insert_id, Mixpanel's dedup key. Used as it is when it is 1-36 "
                                 "characters of A-Z a-z 0-9 and '-'; otherwise (analytics.js's 'ajs-next-...' "
                                 "ids are longer) the first 36 hex digits of its SHA-256, the same on every retry",
                       default=path("$.messageId")),
    "time": Field("datetime", "The event's time, sent in milliseconds (when absent: when the collector received "
                              "it, so that a retry keeps the same time and dedups)", default=path("$.timestamp")),
}

EVENT: dict[str, Field] = {
    "event": Field("string", "The event's name in Mixpanel", required=True, default=path("$.event")),
    **IDENTITY,
    "group_id": Field("string", "Sent as $group_id", default=path("$.context.groupId")),
    **STAMP,
    "ip": Field("string", "The client's IP address, which Mixpanel geolocates (and does not store)",
                default=path("$.context.ip")),
    "event_properties": Field("object", "The event's own properties (Mixpanel's reserved time, id, distinct_id, "
                                        "$insert_id, $user_id, $anon_id and $group_id are left out)",
                              default=path("$.properties")),
    "name": Field("string", "Sent as event_original_name: the track's event or the page's name",
                  default=either("$.event", "$.name")),
    "url": Field("string", "Sent as $current_url", default=path("$.context.page.url")),
    "referrer": Field("string", "Sent as $referrer", default=path("$.context.page.referrer")),
    "userAgent": Field("string", "$browser and $browser_version are read from it", default=path("$.context.userAgent")),
    "language": Field("string", "Sent as $locale", default=path("$.context.locale")),
    "timezone": Field("string", "Sent as timezone", default=path("$.context.timezone")),
    "library": Field("object", "The SDK: name -> mp_lib, version -> $lib_version", default=path("$.context.library")),
    "app": Field("object", "name -> $app_name, namespace -> $app_namespace, build -> $app_build_number, "
                           "version -> $app_version_string, platform -> app_platform", default=path("$.context.app")),
    "os": Field("object", "name -> $os, version -> $os_version", default=path("$.context.os")),
    "device": Field("object", "type -> $device_type, name -> $device and $device_name, manufacturer -> "
                              "$manufacturer, model -> $model, advertisingId -> advertising_id and $ios_ifa, "
                              "adTrackingEnabled -> ad_tracking_enabled, idfa -> $ios_ifa (when no advertisingId)",
                    default=path("$.context.device")),
    "network": Field("object", "bluetooth -> $bluetooth_enabled, carrier -> $carrier, cellular -> $cellular_enabled, "
                               "wifi -> $wifi_enabled", default=path("$.context.network")),
    "screen": Field("object", "width -> $screen_width, height -> $screen_height, density -> $screen_density",
                    default=path("$.context.screen")),
    "location": Field("object", "country -> mp_country_code", default=path("$.context.location")),
    "campaign": Field("object", "name -> utm_campaign, source -> utm_source, medium -> utm_medium, term -> utm_term, "
                                "content -> utm_content", default=path("$.context.campaign")),
    "userAgentData": Field("object", "mobile -> $mobile, platform -> $platform, bitness -> $bitness, platformVersion "
                                     "-> $platformVersion, uaFullVersion -> $uaFullVersion, wow64 -> $wow64",
                           default=path("$.context.userAgentData")),
}

PRODUCT = {
    **_strings("product_id", "sku", "category", "name", "brand", "variant", "coupon", "url", "image_url"),
    "price": Field("number"),
    "quantity": Field("integer"),
    "position": Field("number"),
}

PURCHASE: dict[str, Field] = {
    **EVENT,
    "products": Field("object", "The order's products: each becomes a \"Product Purchased\" event with the order's "
                                "properties but its totals, and the product's own keys (all of them, not only "
                                "those listed)", multiple=True, properties=PRODUCT,
                      default=path("$.properties.products")),
    "generatePurchaseEventPerProduct": Field("boolean", "Send a \"Product Purchased\" event per product",
                                             default=True),
}

IDENTIFY: dict[str, Field] = {
    "user_id": Field("string", "The user id: the profile's $distinct_id and $identify's $identified_id",
                     default=path("$.userId")),
    "anonymous_id": Field("string", "The anonymous id: $identify's $anon_id (the profile's $distinct_id when there "
                                    "is no user id)", default=path("$.anonymousId")),
    "traits": Field("object", "Set on the profile ($set); email, firstName, lastName, name, username, phone and "
                              "created/createdAt/created_at become Mixpanel's $email, $first_name, $last_name, $name, "
                              "$username, $phone, $created", default=path("$.traits")),
    "ip": Field("string", "Geolocates the profile; without it the profile's location is left alone (not the "
                          "collector's own address)", default=path("$.context.ip")),
    **STAMP,
}

GROUP: dict[str, Field] = {
    "group_key": Field("string", "The group key set up in Mixpanel's project settings (default: $group_id)"),
    "group_id": Field("string", "The group's id; a trait named like the group key wins over it", required=True,
                      default=path("$.groupId")),
    "traits": Field("object", "Set on the group profile ($set); name and created/createdAt/created_at become "
                              "$name and $created", default=path("$.traits")),
}

ALIAS: dict[str, Field] = {
    "alias": Field("string", "The new distinct id, merged into distinct_id", required=True,
                   default=either("$.userId", "$.anonymousId")),
    "distinct_id": Field("string", "The existing distinct id", required=True, default=path("$.previousId")),
    **STAMP,
}
