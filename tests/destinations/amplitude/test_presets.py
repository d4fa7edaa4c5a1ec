"""The presets: Segment spec calls in, Amplitude records out (trigger, mapping, validation, then
the records the actions send)."""

from __future__ import annotations

from typing import Any

import pytest

from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.amplitude import events
from collector.destinations.amplitude.presets import ALIAS_MAPPING, GROUP_MAPPING

from .support import settings

ANALYTICS_JS = {
    "library": {"name": "analytics.js", "version": "npm:next-1.84.0"},
    "ip": "203.0.113.7", "locale": "de-DE", "userAgent": "Mozilla/5.0",
    "page": {"path": "/shop", "referrer": "https://news.example/", "title": "Shop", "url": "https://shop.example/shop"},
    "campaign": {"source": "newsletter", "medium": "email", "name": "spring", "term": "shoes", "content": "top"},
}
MOBILE = {
    "library": {"name": "analytics-ios", "version": "4.1.0"},
    "app": {"version": "2.3.1"}, "os": {"name": "iOS", "version": "17.1"}, "network": {"carrier": "T-Mobile"},
    "device": {"id": "B5372DB0-C21E-11E4-8DFC-AA07A5B093DB", "advertisingId": "7A3CBEA0-BDF5-11E4-8DFC-AA07A5B093DB",
               "type": "ios", "manufacturer": "Apple", "model": "iPhone15,2"},
    "location": {"country": "Germany", "region": "NRW", "city": "Köln", "latitude": 50.94, "longitude": 6.96},
}


def matching(event: dict, **overrides: Any) -> list[tuple[str, str, dict]]:
    """(preset, action, payload) of every subscription that takes the event."""
    return [(s.name, s.action.name, s.prepare(event))
            for s in compiled_subscriptions(settings(**overrides)) if s.matches(event)]


def only(event: dict, **overrides: Any) -> tuple[str, str, dict]:
    (found,) = matching(event, **overrides)
    return found


def test_a_browser_track_call():
    event = {"type": "track", "event": "Product Added", "userId": "user-4711", "anonymousId": "anon-5ad1",
             "messageId": "ajs-1", "timestamp": "2024-11-28T13:26:00.123Z", "context": ANALYTICS_JS,
             "properties": {"product_id": "p1", "price": 19.9, "quantity": 2},
             "integrations": {"Actions Amplitude": {"session_id": 1732800000000}}}
    name, action, payload = only(event)
    assert (name, action) == ("Track Calls", "log_event")
    assert events.event(payload) == {
        "user_id": "user-4711", "device_id": "anon-5ad1", "event_type": "Product Added", "time": 1732800360123,
        "session_id": 1732800000000, "insert_id": "ajs-1",
        "event_properties": {"product_id": "p1", "price": 19.9, "quantity": 2},
        "language": "de-DE", "ip": "203.0.113.7", "library": "analytics.js", "platform": "Web",
        "user_properties": {
            "$set": {"referrer": "https://news.example/", "utm_source": "newsletter", "utm_medium": "email",
                     "utm_campaign": "spring", "utm_term": "shoes", "utm_content": "top"},
            "$setOnce": {"initial_referrer": "https://news.example/", "initial_utm_source": "newsletter",
                         "initial_utm_medium": "email", "initial_utm_campaign": "spring",
                         "initial_utm_term": "shoes", "initial_utm_content": "top"}},
    }  # no revenue keys: a product added is no revenue


def test_a_mobile_track_call_takes_the_device():
    event = {"type": "track", "event": "Song Played", "userId": None, "anonymousId": "anon-1", "messageId": "m1",
             "timestamp": "2024-11-28T13:26:00Z", "context": MOBILE, "properties": {}}
    record = events.event(only(event)[2])
    assert record == {
        "user_id": None, "device_id": MOBILE["device"]["id"], "event_type": "Song Played", "time": 1732800360000,
        "insert_id": "m1", "event_properties": {}, "app_version": "2.3.1", "platform": "iOS", "os_name": "iOS",
        "os_version": "17.1", "device_manufacturer": "Apple", "device_model": "iPhone15,2", "carrier": "T-Mobile",
        "country": "Germany", "region": "NRW", "city": "Köln", "location_lat": 50.94, "location_lng": 6.96,
        "idfa": MOBILE["device"]["advertisingId"], "idfv": MOBILE["device"]["id"],
        "adid": MOBILE["device"]["advertisingId"], "library": "analytics-ios",
    }


@pytest.mark.parametrize(("where", "value", "sent"), [
    ({"integrations": {"Actions Amplitude": {"session_id": "1732800000000"}}}, None, 1732800000000),
    ({"context": {"amplitude_session_id": 1732800000000}}, None, 1732800000000),
    ({"integrations": {"Amplitude": {"session_id": 1577871000}}}, None, 1577871000000),  # epoch seconds
    ({"integrations": {"Amplitude": {"session_id": "2020-01-01T09:30:00Z"}}}, None, 1577871000000),
    ({"integrations": {"Actions Amplitude": {"session_id": -1}}}, None, -1),
    ({}, None, None),
])
def test_session_id_from_the_browser_plugins_or_the_integrations_option(where, value, sent):
    event = {"type": "track", "event": "E", "userId": "user-1", "messageId": "m", **where}
    assert events.event(only(event)[2]).get("session_id") == sent


def test_the_segment_session_plugin_wins_over_the_older_places():
    event = {"type": "track", "event": "E", "userId": "user-1", "context": {"amplitude_session_id": 2},
             "integrations": {"Actions Amplitude": {"session_id": 1732800000000}, "Amplitude": {"session_id": 3}}}
    assert events.event(only(event)[2])["session_id"] == 1732800000000


@pytest.mark.parametrize(("call", "name", "event_type"), [
    ({"type": "page", "name": "Pricing", "category": "Docs"}, "Page Calls", "Viewed Pricing"),
    ({"type": "page"}, "Page Calls", "Viewed a Page"),
    ({"type": "page", "name": ""}, "Page Calls", "Viewed a Page"),
    ({"type": "screen", "name": "Home"}, "Screen Calls", "Viewed Home"),
    ({"type": "screen"}, "Screen Calls", "Viewed a Screen"),
])
def test_pages_and_screens_are_viewed_events(call, name, event_type):
    event = {**call, "anonymousId": "anon-1", "messageId": "m", "properties": {"path": "/p"}}
    preset, action, payload = only(event)
    record = events.event(payload)
    assert (preset, action, record["event_type"], record["event_properties"], record["insert_id"]) == (
        name, "log_event", event_type, {"path": "/p"}, "m")


ORDER = {
    "type": "track", "event": "Order Completed", "userId": "user-4711", "anonymousId": "anon-1",
    "messageId": "ajs-9", "timestamp": "2024-11-28T13:26:00.123Z",
    "properties": {"order_id": "o-1", "total": 27.5, "revenue": 25.0, "currency": "EUR",
                   "products": [{"product_id": "507f", "sku": "45790-32", "name": "Monopoly", "price": 19,
                                 "quantity": 1, "category": "Games"},
                                {"product_id": 505, "name": "Uno", "price": 3.25, "quantity": 2}]},
}


def test_an_order_is_its_event_with_revenue_then_a_product_purchased_event_per_product():
    name, action, payload = only(ORDER)
    assert (name, action) == ("Order Completed Calls", "log_purchase")
    order, monopoly, uno = events.purchase_events(payload)
    assert order == {"user_id": "user-4711", "device_id": "anon-1", "event_type": "Order Completed",
                     "time": 1732800360123, "insert_id": "ajs-9", "library": "segment",
                     "event_properties": {"order_id": "o-1", "total": 27.5, "revenue": 25.0, "currency": "EUR"},
                     "revenue": 25.0, "revenueType": "Purchase"}
    assert monopoly == {"user_id": "user-4711", "device_id": "anon-1", "time": 1732800360123, "library": "segment",
                        "event_type": "Product Purchased", "insert_id": "ajs-9-2",
                        "event_properties": ORDER["properties"]["products"][0]}
    assert uno["event_properties"] == {"product_id": "505", "name": "Uno", "price": 3.25, "quantity": 2}
    assert uno["insert_id"] == "ajs-9-3"


def test_an_order_without_revenue_takes_its_total():
    event = {**ORDER, "properties": {"total": 27.5, "products": []}}
    (order,) = events.purchase_events(only(event)[2])
    assert (order["revenue"], order["revenueType"]) == (27.5, "Purchase")


def test_revenue_per_product_is_a_mapping_away():
    mapping = {"name": "Order Completed Calls", "fields": {"track_revenue_per_product": True}}
    order, monopoly, uno = events.purchase_events(only(ORDER, mappings=[mapping])[2])
    assert "revenue" not in order
    assert [(e["revenue"], e["quantity"], e["price"], e["productId"]) for e in (monopoly, uno)] == [
        (19, 1, 19, "507f"), (6.5, 2, 3.25, "505")]


def test_an_order_is_not_also_a_track_event():
    assert [name for name, _, _ in matching(ORDER)] == ["Order Completed Calls"]


def test_an_identify_call_sets_the_traits_and_the_campaign():
    event = {"type": "identify", "userId": "user-4711", "anonymousId": "anon-1", "messageId": "i-1",
             "traits": {"email": "ada@example.com", "plan": "pro"}, "context": ANALYTICS_JS}
    name, action, payload = only(event)
    assert (name, action) == ("Identify Calls", "identify_user")
    identification = events.identification(payload)
    assert identification["user_id"] == "user-4711" and identification["device_id"] == "anon-1"
    assert identification["user_properties"]["$set"] == {
        "email": "ada@example.com", "plan": "pro", "referrer": "https://news.example/", "utm_source": "newsletter",
        "utm_medium": "email", "utm_campaign": "spring", "utm_term": "shoes", "utm_content": "top"}
    assert identification["user_properties"]["$setOnce"]["initial_utm_source"] == "newsletter"
    assert (identification["platform"], identification["language"]) == ("Web", "de-DE")


def test_a_server_identify_call_sends_the_traits_as_they_are():
    event = {"type": "identify", "userId": "user-4711", "traits": {"plan": "pro", "$add": {"logins": 1}},
             "context": {"library": {"name": "analytics-python"}}}
    assert events.identification(only(event)[2]) == {
        "user_id": "user-4711", "user_properties": {"plan": "pro", "$add": {"logins": 1}},
        "library": "analytics-python"}


def test_group_and_alias_calls_take_their_documented_mappings():
    group = {"type": "group", "userId": "user-4711", "groupId": "acme-1", "traits": {"name": "Acme"}}
    alias = {"type": "alias", "userId": "user-4711", "previousId": "old-id-1"}
    overrides = {"mappings": [GROUP_MAPPING, ALIAS_MAPPING]}
    name, action, payload = only(group, **overrides)
    assert (name, action) == ("Group Calls", "group_identify_user")
    assert events.group_identification(payload) == {"group_type": "[Segment] Group", "group_value": "acme-1",
                                                    "group_properties": {"name": "Acme"}, "library": "segment"}
    assert only(alias, **overrides)[1:] == ("map_user", {"user_id": "old-id-1", "global_user_id": "user-4711"})
    assert matching(group) == [] and matching(alias) == []


README_MAPPINGS = """\
destinations:
  amplitude:
    type: amplitude
    api_key: ${AMPLITUDE_API_KEY}
    region: eu
    mappings:
      - name: Group Calls
        action: group_identify_user
        trigger: type = "group"
        fields:
          group_type: Company
      - name: Alias Calls
        action: map_user
        trigger: type = "alias"
      - name: Page Calls
        fields:
          event_type: Loaded a Page
          event_properties:
            "@merge":
              objects:
                - {"@path": "$.properties"}
                - {name: {"@path": "$.name"}, category: {"@path": "$.category"}}
"""


def test_the_readme_mappings_load_and_send_what_it_says(monkeypatch):
    from collector.config.loader import load_config_text

    monkeypatch.setenv("AMPLITUDE_API_KEY", "amp-key")
    config = load_config_text(README_MAPPINGS, "README.md").destinations["amplitude"]
    subscriptions = compiled_subscriptions(config)
    assert [s.name for s in subscriptions] == [
        "Track Calls", "Order Completed Calls", "Page Calls", "Screen Calls", "Identify Calls", "Group Calls",
        "Alias Calls"]

    def one(event: dict) -> tuple[str, dict]:
        (found,) = [(s.action.name, s.prepare(event)) for s in subscriptions if s.matches(event)]
        return found

    page = {"type": "page", "name": "Pricing", "category": "Docs", "anonymousId": "anon-1", "messageId": "m",
            "properties": {"path": "/pricing"}, "context": {"page": {"referrer": "https://r"}}}
    action, payload = one(page)
    record = events.event(payload)
    assert (action, record["event_type"], record["event_properties"], record["insert_id"]) == (
        "log_event", "Loaded a Page", {"path": "/pricing", "name": "Pricing", "category": "Docs"}, "m")
    assert record["user_properties"] == {"$set": {"referrer": "https://r"},
                                         "$setOnce": {"initial_referrer": "https://r"}}
    action, payload = one({"type": "group", "userId": "user-1", "groupId": "acme-1", "traits": {"name": "Acme"}})
    assert (action, events.group_association(payload)["groups"]) == ("group_identify_user", {"Company": "acme-1"})
    assert one({"type": "alias", "userId": "user-1", "previousId": "old-1"}) == (
        "map_user", {"user_id": "old-1", "global_user_id": "user-1"})
