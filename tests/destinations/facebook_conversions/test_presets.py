"""The presets: Segment spec events in, Meta's server events (and Custom Audience changes) out,
through the real triggers, mappings, validation and hashing. The expected hashes are written from
Meta's normalisation rules (docs/vendors/analytics-ads.md §6), not from the code."""

from __future__ import annotations

import textwrap

import pytest

from collector.config.loader import load_config_text
from collector.destinations.facebook_conversions import FacebookConversions

from .support import (
    NOW,
    USER_AGENT,
    browser_event,
    iso,
    meta_event,
    payloads,
    server_sdk_event,
    settings,
    sha,
)

ADA = {"email": " Ada.Lovelace@Example.COM ", "phone": "+1 (650) 555-0123", "firstName": "Ada",
       "lastName": "Lovelace", "gender": "female", "birthday": "1815-12-10",
       "address": {"city": "San Francisco", "state": "California", "postalCode": "94105-1234", "country": "US"}}
ADA_HASHED = {"em": sha("ada.lovelace@example.com"), "ph": sha("16505550123"), "fn": sha("ada"),
              "ln": sha("lovelace"), "ge": sha("f"), "db": sha("18151210"), "ct": sha("sanfrancisco"),
              "st": sha("ca"), "zp": sha("94105"), "country": sha("us")}
PRODUCTS = [{"product_id": "p1", "sku": "S1", "name": "Monopoly", "price": 19, "quantity": 1},
            {"sku": "S2", "name": "Uno", "price": 3.25, "quantity": 2},
            {"name": "a gift card without id", "price": 10}]


def test_order_completed_is_a_purchase_with_hashed_user_data_and_contents():
    event = browser_event("track", "Order Completed", {
        "order_id": "o-1", "revenue": 25.0, "total": 27.5, "currency": "eur", "products": PRODUCTS,
        "fbp": "fb.1.1700000000000.1234567890"})
    event["context"]["traits"] = ADA
    name, meta = meta_event(event)
    assert name == "Order Completed"
    assert meta == {
        "event_name": "Purchase",
        "event_time": int(NOW - 60),
        "event_id": "msg-1",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/p?x=1",
        "user_data": {**ADA_HASHED, "external_id": sha("user-1"), "client_ip_address": "203.0.113.7",
                      "client_user_agent": USER_AGENT, "fbp": "fb.1.1700000000000.1234567890"},
        "custom_data": {
            "value": 25.0,  # revenue first, as Segment's Meta action takes it
            "currency": "EUR",
            "contents": [{"id": "p1", "quantity": 1, "item_price": 19},
                         {"id": "S2", "quantity": 2, "item_price": 3.25}],  # the gift card has no id
            "num_items": 3,
            "content_type": "product",
            "order_id": "o-1",
        },
    }


def test_an_order_without_revenue_takes_its_total_and_a_server_event_the_configured_source():
    event = server_sdk_event("Order Completed", {"order_id": 1234, "total": "42.50", "currency": "USD"})
    name, meta = meta_event(event, settings(action_source="system_generated"))
    assert meta["action_source"] == "system_generated"
    assert "event_source_url" not in meta
    assert meta["user_data"] == {"external_id": sha("user-2")}
    assert meta["custom_data"] == {"value": 42.5, "currency": "USD", "order_id": "1234"}


def test_checkout_started_is_initiate_checkout_with_the_number_of_items():
    _, meta = meta_event(browser_event("track", "Checkout Started", {"revenue": 22.25, "currency": "USD",
                                                                     "products": PRODUCTS}))
    assert meta["event_name"] == "InitiateCheckout"
    assert meta["custom_data"] == {"value": 22.25, "currency": "USD", "num_items": 3, "content_type": "product",
                                   "contents": [{"id": "p1", "quantity": 1, "item_price": 19},
                                                {"id": "S2", "quantity": 2, "item_price": 3.25}]}


def test_product_added_is_add_to_cart_with_the_product_as_contents():
    _, meta = meta_event(browser_event("track", "Product Added", {
        "product_id": "p9", "sku": "S9", "name": "Chess", "category": "Games", "price": 30, "currency": "GBP"}))
    assert meta["event_name"] == "AddToCart"
    assert meta["custom_data"] == {"value": 30, "currency": "GBP", "contents": [{"id": "p9", "quantity": 1,
                                                                                   "item_price": 30}],
                                   "content_name": "Chess", "content_category": "Games", "num_items": 1,
                                   "content_type": "product"}


def test_product_viewed_is_view_content_with_content_ids():
    _, meta = meta_event(browser_event("track", "Product Viewed", {"sku": "S9", "name": "Chess", "price": 30}))
    assert meta["event_name"] == "ViewContent"
    assert meta["custom_data"] == {"value": 30, "content_ids": ["S9"], "content_name": "Chess",
                                   "contents": [{"id": "S9", "quantity": 1, "item_price": 30}], "num_items": 1,
                                   "content_type": "product"}


def test_products_searched_is_search():
    _, meta = meta_event(browser_event("track", "Products Searched", {"query": "blue hotpants"}))
    assert (meta["event_name"], meta["custom_data"]) == ("Search", {"search_string": "blue hotpants"})


def test_a_page_is_a_page_view_without_custom_data():
    name, meta = meta_event(browser_event("page", name="Home", properties={"title": "Home"}))
    assert (name, meta["event_name"], meta["action_source"]) == ("Page Calls", "PageView", "website")
    assert "custom_data" not in meta


def test_any_other_track_is_a_custom_event_with_its_properties():
    name, meta = meta_event(browser_event("track", "Newsletter Subscribed", {"list": "weekly", "value": "3"}))
    assert (name, meta["event_name"]) == ("Custom Events", "Newsletter Subscribed")
    assert meta["custom_data"] == {"list": "weekly", "value": 3}


@pytest.mark.parametrize("event", [
    {"type": "identify", "userId": "u", "traits": {"email": "a@example.com"}},
    {"type": "screen", "userId": "u", "name": "Home"},
    {"type": "group", "userId": "u", "groupId": "g"},
])
def test_calls_meta_has_no_event_for_match_no_preset(event):
    assert payloads(event) == {}


@pytest.mark.parametrize(("event", "operation"), [("Audience Entered", "add"), ("Audience Exited", "remove")])
def test_engage_audience_events_change_a_custom_audience(event, operation):
    body = browser_event("track", event, {"audience_key": "vip", "vip": operation == "add",
                                          "email": "Ada@Example.com"})
    body["context"]["device"] = {"advertisingId": "ABCDEF01-2345-6789-ABCD-EF0123456789"}
    assert payloads(body) == {event: {
        "operation": operation, "audience_key": "vip", "external_id": sha("user-1"),
        "em": sha("ada@example.com"), "madid": "ABCDEF01-2345-6789-ABCD-EF0123456789"}}


def test_the_audience_key_may_come_from_context_personas():
    body = server_sdk_event("Audience Entered", context={"personas": {"computation_key": "vip",
                                                                      "computation_class": "audience"},
                                                         "traits": {"email": "b@example.com"}})
    (payload,) = payloads(body).values()
    assert payload["audience_key"] == "vip" and payload["em"] == sha("b@example.com")


def test_fbp_and_fbc_come_from_properties_else_from_context():
    in_context = browser_event("page")
    in_context["context"].update(fbp="fb.1.1700000000000.111", fbc="fb.1.1700000000001.IwAR-click")
    _, meta = meta_event(in_context)
    assert (meta["user_data"]["fbp"], meta["user_data"]["fbc"]) == ("fb.1.1700000000000.111",
                                                                   "fb.1.1700000000001.IwAR-click")
    in_properties = browser_event("page", properties={"fbp": "fb.2.1700000000000.222"})
    in_properties["context"]["fbp"] = "fb.1.1700000000000.111"
    assert meta_event(in_properties)[1]["user_data"]["fbp"] == "fb.2.1700000000000.222"


def test_fbc_is_built_from_the_fbclid_of_the_page_url_when_no_cookie_came():
    event = browser_event("page")
    event["context"]["page"]["url"] = "https://shop.example.com/?utm_source=fb&fbclid=IwAR2F4-dbP0l7Mn1Iaw"
    _, meta = meta_event(event)
    assert meta["user_data"]["fbc"] == f"fb.1.{int(NOW - 60) * 1000}.IwAR2F4-dbP0l7Mn1Iaw"
    event["context"]["fbc"] = "fb.1.1600000000000.earlier-click"  # the cookie wins: it has the click's time
    assert meta_event(event)[1]["user_data"]["fbc"] == "fb.1.1600000000000.earlier-click"


def test_malformed_cookies_and_an_invalid_ip_are_left_out_rather_than_refused():
    event = browser_event("page", properties={"fbp": "not-a-cookie", "fbc": "fb.1.x.y"})
    event["context"]["ip"] = "unknown"
    _, meta = meta_event(event)
    assert set(meta["user_data"]) == {"external_id", "client_user_agent"}


def test_identifiers_already_hashed_are_kept_and_anonymous_visitors_use_their_anonymous_id():
    event = browser_event("page", userId=None)
    event["context"]["traits"] = {"email": sha("ada@example.com").upper()}
    user_data = meta_event(event)[1]["user_data"]
    assert user_data["em"] == sha("ada@example.com")
    assert user_data["external_id"] == sha("anon-1")


def test_a_mapped_action_source_wins_and_a_website_event_needs_its_url_and_user_agent():
    config = settings(mappings=[{"name": "Custom Events", "fields": {"action_source": "website"}}])
    _, refused = meta_event(server_sdk_event("Called Support"), config)
    assert refused == ("a website event needs event_source_url and client_user_agent (Meta refuses it without); "
                       "map action_source, or set the destination's action_source for events that are not a "
                       "browser's")
    config = settings(mappings=[{"name": "Custom Events", "fields": {"action_source": "phone_call"}}])
    assert meta_event(browser_event("track", "Called Support"), config)[1]["action_source"] == "phone_call"


README_MAPPINGS = """\
destinations:
  meta:
    type: facebook_conversions
    pixel_id: 1234567890123456
    access_token: EAAtest-system-user-token
    mappings:
      - name: Order Completed          # a preset's name: these fields replace the preset's
        fields:
          currency:
            "@if": {exists: {"@path": "$.properties.currency"}, then: {"@path": "$.properties.currency"}, else: EUR}
      - name: Leads                    # a new subscription
        action: event
        trigger: type = "track" and event = "Form Submitted"
        fields:
          event_name: Lead
          em: {"@path": "$.properties.email"}
      - name: Custom Events            # the custom events preset leaves Form Submitted to Leads
        trigger: >-
          type = "track" and !(event in ["Order Completed", "Checkout Started", "Product Added",
          "Product Viewed", "Products Searched", "Audience Entered", "Audience Exited", "Form Submitted"])
"""


def test_the_readme_mappings_load_from_yaml_and_do_what_they_say():
    config = load_config_text(textwrap.dedent(README_MAPPINGS), "meta.yaml").destinations["meta"]
    assert type(config).destination is FacebookConversions
    order = server_sdk_event("Order Completed", {"order_id": "o-2", "revenue": 10})
    assert meta_event(order, config)[1]["custom_data"]["currency"] == "EUR"
    order["properties"]["currency"] = "USD"
    assert meta_event(order, config)[1]["custom_data"]["currency"] == "USD"
    form = browser_event("track", "Form Submitted", {"email": "Lead@Example.com"})
    name, lead = meta_event(form, config)  # exactly one subscription takes it
    assert (name, lead["event_name"], lead["user_data"]["em"]) == ("Leads", "Lead", sha("lead@example.com"))
    assert meta_event(browser_event("track", "Other Thing"), config)[0] == "Custom Events"


def test_event_time_is_unix_seconds_from_the_events_timestamp_with_any_offset():
    event = browser_event("page", timestamp="2025-06-15T17:05:40+02:00")
    assert meta_event(event)[1]["event_time"] == int(NOW - 60)
    assert iso(NOW - 60) == "2025-06-15T15:05:40.000Z"
