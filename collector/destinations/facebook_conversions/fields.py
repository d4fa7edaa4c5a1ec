"""The fields of the Meta actions: a Conversions API server event, and a Custom Audience change.

The event's fields are flat (``em``, ``value``, ...), named as Meta names the keys of ``user_data``
and ``custom_data``, so that a mapping changes one of them with one line; ``events.py`` puts them
into Meta's nested shape. Identifiers marked ``hashed`` are normalised and SHA-256 hashed by Meta's
rules before they leave (a value that is already a SHA-256 hex digest is kept).
"""

from __future__ import annotations

from typing import Any

from collector.destinations.actions.fields import Field

# Meta's documented action_source values.
ACTION_SOURCES = ("website", "app", "email", "phone_call", "chat", "physical_store", "system_generated",
                  "business_messaging", "other")


def first_of(*paths: str) -> dict[str, Any]:
    """A mapping value: the first of these event paths that exists."""
    value: dict[str, Any] = {"@path": paths[-1]}
    for path in reversed(paths[:-1]):
        value = {"@if": {"exists": {"@path": path}, "then": {"@path": path}, "else": value}}
    return value


# user_data: customer information parameters. Hashed ones first (their hashing kind), then those
# Meta wants in clear.
USER_DATA_HASHED: dict[str, str] = {
    "em": "email", "ph": "phone", "fn": "first_name", "ln": "last_name", "ge": "gender",
    "db": "date_of_birth", "ct": "city", "st": "state", "zp": "zip", "country": "country",
    "external_id": "external_id",
}
USER_DATA_PLAIN = ("client_ip_address", "client_user_agent", "fbc", "fbp")
USER_DATA_KEYS = tuple(USER_DATA_HASHED) + USER_DATA_PLAIN

CONTENT = {
    "id": Field("string", "The product's id (SKU or catalogue id)"),
    "quantity": Field("integer", "How many (1 when not given)"),
    "item_price": Field("number", "The price of one"),
}

EVENT_FIELDS: dict[str, Field] = {
    "event_name": Field("string", "A Meta standard event (Purchase, AddToCart ...) or a custom event name",
                        required=True, default={"@path": "$.event"}),
    "event_time": Field("datetime", "When it happened; sent as Unix seconds. Meta refuses events more than 7 "
                        "days old (62 for physical_store) or ahead of its clock", required=True,
                        default={"@path": "$.timestamp"}),
    "event_id": Field("string", "De-duplicates with the browser pixel's eventID (same event_name and event_id "
                      "within 48 h)", default={"@path": "$.messageId"}),
    "event_source_url": Field("string", "The page where it happened", default={"@path": "$.context.page.url"}),
    "action_source": Field("string", "Where it happened. Unmapped: website when the event has a page URL and a "
                           "user agent (a browser's event), else the destination's action_source setting",
                           choices=ACTION_SOURCES),
    # user_data, hashed
    "em": Field("string", "E-mail", hashed="email", default={"@path": "$.context.traits.email"}),
    "ph": Field("string", "Phone, with the country code", hashed="phone", default={"@path": "$.context.traits.phone"}),
    "fn": Field("string", "First name", hashed="first_name", default={"@path": "$.context.traits.firstName"}),
    "ln": Field("string", "Last name", hashed="last_name", default={"@path": "$.context.traits.lastName"}),
    "ge": Field("string", "Gender (f, m, female, male)", hashed="gender", default={"@path": "$.context.traits.gender"}),
    "db": Field("string", "Date of birth (YYYY-MM-DD)", hashed="date_of_birth",
                default={"@path": "$.context.traits.birthday"}),
    "ct": Field("string", "City", hashed="city", default={"@path": "$.context.traits.address.city"}),
    "st": Field("string", "State (US names become their 2-letter code)", hashed="state",
                default={"@path": "$.context.traits.address.state"}),
    "zp": Field("string", "Zip or postal code", hashed="zip", default={"@path": "$.context.traits.address.postalCode"}),
    "country": Field("string", "Country, ISO 3166-1 alpha-2", hashed="country",
                     default={"@path": "$.context.traits.address.country"}),
    "external_id": Field("string", "Your id of the user", hashed="external_id", default=first_of("$.userId",
                                                                                                  "$.anonymousId")),
    # user_data, in clear
    "client_ip_address": Field("string", "The visitor's IP address (an invalid one is left out)",
                               default={"@path": "$.context.ip"}),
    "client_user_agent": Field("string", "The visitor's browser user agent", default={"@path": "$.context.userAgent"}),
    "fbc": Field("string", "The _fbc cookie (click id). Unmapped or empty: built from an fbclid in the page URL, "
                 "as Meta documents; a malformed value is left out", default=first_of("$.properties.fbc",
                                                                                       "$.context.fbc")),
    "fbp": Field("string", "The _fbp cookie (browser id); a malformed value is left out",
                 default=first_of("$.properties.fbp", "$.context.fbp")),
    # custom_data
    "value": Field("number", "The monetary value (Purchase needs it)"),
    "currency": Field("string", "ISO 4217 code (Purchase needs it)", default={"@path": "$.properties.currency"}),
    "content_ids": Field("string", "Product ids", multiple=True),
    "contents": Field("object", "Products: id, quantity, item_price. Items without an id are left out",
                      multiple=True, properties=CONTENT),
    "content_name": Field("string", "The product's or page's name"),
    "content_category": Field("string", "The product's category"),
    "content_type": Field("string", "product or product_group (product when contents or content_ids are sent)"),
    "num_items": Field("integer", "How many items (unmapped: the sum of the contents' quantities)"),
    "order_id": Field("string", "The order's id"),
    "search_string": Field("string", "What was searched for"),
    "custom_data": Field("object", "More custom_data keys (the fields above take precedence)"),
    "data_processing_options": Field("string", "Limited Data Use: [LDU] (or [] for none)", multiple=True),
    "data_processing_options_country": Field("integer", "With LDU: 1 for the US, 0 to let Meta geolocate"),
    "data_processing_options_state": Field("integer", "With LDU: 1000 for California, 0 to let Meta geolocate"),
}

CUSTOM_DATA_KEYS = ("value", "currency", "content_ids", "contents", "content_name", "content_category",
                    "content_type", "num_items", "order_id", "search_string")

# A Custom Audience row: the field, its hashing kind (None: sent in clear), its key in Meta's schema.
AUDIENCE_COLUMNS: tuple[tuple[str, str | None, str], ...] = (
    ("external_id", "external_id", "EXTERN_ID"),
    ("em", "email", "EMAIL"),
    ("ph", "phone", "PHONE"),
    ("fn", "first_name", "FN"),
    ("ln", "last_name", "LN"),
    ("ge", "gender", "GEN"),
    ("ct", "city", "CT"),
    ("st", "state", "ST"),
    ("zp", "zip", "ZIP"),
    ("country", "country", "COUNTRY"),
    ("madid", None, "MADID"),
)

AUDIENCE_FIELDS: dict[str, Field] = {
    "operation": Field("string", "add or remove the user", required=True, choices=("add", "remove")),
    "audience_key": Field("string", "The Segment audience's key, looked up in the destination's audiences setting",
                          default=first_of("$.properties.audience_key", "$.context.personas.computation_key")),
    "audience_id": Field("string", "The Custom Audience id itself (mapped, it wins over the audiences setting)"),
    "external_id": Field("string", "Your id of the user", hashed="external_id", default={"@path": "$.userId"}),
    "em": Field("string", "E-mail", hashed="email", default=first_of("$.properties.email", "$.context.traits.email")),
    "ph": Field("string", "Phone, with the country code", hashed="phone",
                default=first_of("$.properties.phone", "$.context.traits.phone")),
    "fn": Field("string", "First name", hashed="first_name", default={"@path": "$.context.traits.firstName"}),
    "ln": Field("string", "Last name", hashed="last_name", default={"@path": "$.context.traits.lastName"}),
    "ge": Field("string", "Gender", hashed="gender", default={"@path": "$.context.traits.gender"}),
    "ct": Field("string", "City", hashed="city", default={"@path": "$.context.traits.address.city"}),
    "st": Field("string", "State", hashed="state", default={"@path": "$.context.traits.address.state"}),
    "zp": Field("string", "Zip or postal code", hashed="zip", default={"@path": "$.context.traits.address.postalCode"}),
    "country": Field("string", "Country, ISO 3166-1 alpha-2", hashed="country",
                     default={"@path": "$.context.traits.address.country"}),
    "madid": Field("string", "Mobile advertising id (IDFA, AAID), in clear",
                   default={"@path": "$.context.device.advertisingId"}),
}
