"""The fields of GA4's actions: those every event has (identity, time, session, extra params) and
those of each recommended event, with their defaults (presets.py)."""

from __future__ import annotations

import copy
import dataclasses

from collector.destinations.actions.fields import Field
from collector.destinations.google_analytics_4.presets import (
    CHECKOUT_VALUE,
    CLIENT_ID,
    ITEM_FROM_PROPERTIES,
    ITEMS_FROM_PRODUCTS,
    ORDER_VALUE,
    SESSION_ID,
    first_of,
    path,
)

# Fields that go to the request's body rather than into the event's params.
REQUEST_FIELDS = ("client_id", "app_instance_id", "user_id", "user_properties")
# Fields the event itself carries (not params).
EVENT_FIELDS = ("name", "lowercase", "timestamp_micros", "params")

# Every action has these.
COMMON: dict[str, Field] = {
    "client_id": Field(
        "string", "The web stream's client id: the browser's _ga cookie id (our analytics.js sends it in "
        "integrations[\"Google Analytics 4\"].clientId), else the anonymousId, else the userId. Events of "
        "one client_id and user go in one request.", default=CLIENT_ID),
    "app_instance_id": Field(
        "string", "An app stream's (firebase_app_id) instance id, from the Firebase SDK; no default: map it "
        "for app streams, which need it instead of client_id."),
    "user_id": Field("string", "The user's id in your systems (no PII).", max_length=256, default=path("$.userId")),
    "timestamp_micros": Field(
        "datetime", "When it happened; GA4 takes events up to 72 hours old.", default=path("$.timestamp")),
    "engagement_time_msec": Field(
        "integer", "Engagement time in ms; GA4 shows events without it in no Realtime report.",
        minimum=0, default=1),
    "session_id": Field(
        "string", "The GA session: the browser's _ga_<container> cookie (sent by our analytics.js in "
        "integrations[\"Google Analytics 4\"].sessionId).", default=SESSION_ID),
    "params": Field(
        "object", "More event params: names [A-Za-z][A-Za-z0-9_]* of at most 40 characters, values text "
        "(at most 100 characters), numbers or booleans."),
    "user_properties": Field(
        "object", "User properties, name -> value (names of at most 24 characters, values of at most 36); "
        "events with different user properties go in different requests."),
}

_ITEM = {
    name: Field(kind, description)
    for name, kind, description in (
        ("item_id", "string", "The product's id (item_id or item_name is required)."),
        ("item_name", "string", "The product's name."),
        ("affiliation", "string", "A store or supplier."),
        ("coupon", "string", "The item's coupon."),
        ("discount", "number", "The unit discount."),
        ("index", "integer", "The position in a list."),
        ("item_brand", "string", "The brand."),
        ("item_category", "string", "The category."),
        ("item_category2", "string", "A second category."),
        ("item_list_id", "string", "The list the item was shown in."),
        ("item_list_name", "string", "That list's name."),
        ("item_variant", "string", "The variant (size, colour ...)."),
        ("location_id", "string", "A physical location."),
        ("price", "number", "The unit price."),
        ("quantity", "integer", "The number of units."),
    )
}


def items(default: object, required: bool = False) -> Field:
    return Field("object", "The products, as GA4 items.", required=required, multiple=True, properties=_ITEM,
                 default=default)


CURRENCY = Field("string", "ISO 4217 currency code (GA4 counts a value as revenue only with one).", default=path("$.properties.currency"))


def value(default: object) -> Field:
    return Field("number", "The monetary value of the event (revenue only with a currency).", default=default)


_ORDER = {
    "transaction_id": Field("string", "The order's id.", required=True, default=path("$.properties.order_id")),
    "currency": CURRENCY,
    "value": value(ORDER_VALUE),
    "affiliation": Field("string", "A store or supplier.", default=path("$.properties.affiliation")),
    "coupon": Field("string", "The order's coupon.", default=path("$.properties.coupon")),
    "shipping": Field("number", "Shipping cost.", default=path("$.properties.shipping")),
    "tax": Field("number", "Tax.", default=path("$.properties.tax")),
    "items": items(ITEMS_FROM_PRODUCTS),
}
_ONE_PRODUCT = {"currency": CURRENCY, "value": value(path("$.properties.value")), "items": items(ITEM_FROM_PROPERTIES)}
_LIST = {
    "item_list_id": Field("string", "The list's id.", default=path("$.properties.list_id")),
    "item_list_name": Field("string", "The list's name.", default=path("$.properties.category")),
}
_PROMOTION = {
    "promotion_id": Field("string", "The promotion's id.", default=path("$.properties.promotion_id")),
    "promotion_name": Field("string", "The promotion's name.", default=path("$.properties.name")),
    "creative_name": Field("string", "The creative.", default=path("$.properties.creative")),
    "creative_slot": Field("string", "Where the creative was shown.", default=path("$.properties.position")),
    "location_id": Field("string", "A physical location."),
    "items": items(ITEMS_FROM_PRODUCTS),
}
_CHECKOUT = {
    "currency": CURRENCY, "value": value(CHECKOUT_VALUE),
    "coupon": Field("string", "The order's coupon.", default=path("$.properties.coupon")),
    "items": items(ITEMS_FROM_PRODUCTS),
}

# Each action's own fields, which become the event's params.
SPECIFIC: dict[str, dict[str, Field]] = {
    "page_view": {
        "page_location": Field("string", "The page's URL (at most 1000 characters).", default=path("$.context.page.url")),
        "page_referrer": Field("string", "The referrer (at most 420 characters).",
                               default=path("$.context.page.referrer")),
        "page_title": Field("string", "The page's title (at most 300 characters).", default=path("$.context.page.title")),
    },
    "custom_event": {
        "name": Field("string", "The event's name; made GA4-valid when sent: spaces become _, other characters "
                      "GA4 refuses are dropped, it starts with a letter and is cut to 40 characters.",
                      required=True, default=path("$.event")),
        "lowercase": Field("boolean", "Lower-case the name too.", default=False),
    },
    "search": {"search_term": Field("string", "What was searched for.", required=True,
                                    default=path("$.properties.query"))},
    "view_item_list": {**_LIST, "items": items(ITEMS_FROM_PRODUCTS)},
    "select_item": {"item_list_id": _LIST["item_list_id"], "item_list_name": Field("string", "The list's name."),
                    "items": items(ITEM_FROM_PROPERTIES)},
    "view_item": _ONE_PRODUCT,
    "add_to_cart": _ONE_PRODUCT,
    "remove_from_cart": _ONE_PRODUCT,
    "add_to_wishlist": _ONE_PRODUCT,
    "view_cart": {"currency": CURRENCY, "value": value(CHECKOUT_VALUE), "items": items(ITEMS_FROM_PRODUCTS)},
    "begin_checkout": _CHECKOUT,
    "add_payment_info": {**_CHECKOUT, "payment_type": Field("string", "How the visitor pays.",
                                                            default=path("$.properties.payment_method"))},
    "purchase": _ORDER,
    "refund": _ORDER,
    "view_promotion": _PROMOTION,
    "select_promotion": _PROMOTION,
    "sign_up": {"method": Field("string", "How the visitor signed up.",
                                default=first_of("$.properties.method", "$.properties.type"))},
    "login": {"method": Field("string", "How the visitor logged in.", default=path("$.properties.method"))},
}


def fields_of(action: str) -> dict[str, Field]:
    """An action's fields: its own first, then those every action has. Each action gets its own
    copy of the defaults (a printed catalogue would otherwise show YAML aliases between them)."""
    return {name: dataclasses.replace(field, default=copy.deepcopy(field.default))
            for name, field in {**SPECIFIC[action], **COMMON}.items()}
