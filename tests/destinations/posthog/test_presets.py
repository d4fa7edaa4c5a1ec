"""The presets and the event each action builds: Segment spec events in, PostHog events out."""

from __future__ import annotations

import timeit
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.config.loader import load_config, load_config_text
from collector.config.units import decode_hook
from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.posthog import PostHogSettings
from collector.destinations.posthog.actions import SHAPES
from collector.destinations.posthog.api import event_uuid, posthog_event

from .expected import NAMESPACE

BROWSER = {
    "library": {"name": "analytics.js", "version": "npm:next-1.84.0"},
    "ip": "203.0.113.7",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
    "page": {"path": "/pricing", "referrer": "https://www.google.com/", "title": "Pricing",
             "url": "https://shop.example.com/pricing?plan=pro"},
}
BROWSER_PROPERTIES = {"$lib": "analytics.js", "$lib_version": "npm:next-1.84.0", "$ip": "203.0.113.7",
                      "$raw_user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
SERVER = {"library": {"name": "analytics-python", "version": "2.3.4"}}
SERVER_PROPERTIES = {"$lib": "analytics-python", "$lib_version": "2.3.4", "$geoip_disable": True}
MESSAGE_UUID = "9F2B6F0C-3E39-4F47-A2B6-8F0A7C1D5E21"


def settings(**overrides: Any) -> PostHogSettings:
    data = {"type": "posthog", "api_key": "phc_k", "endpoint": "https://eu.i.posthog.com", **overrides}
    return msgspec.convert(data, PostHogSettings, strict=False, dec_hook=decode_hook)


def to_posthog(event: dict, **overrides: Any) -> list[tuple[str, dict]]:
    """(subscription name, PostHog event) for every subscription that takes the event."""
    out = []
    for subscription in compiled_subscriptions(settings(**overrides)):
        if subscription.matches(event):
            built, problem = posthog_event(SHAPES[subscription.action.name], subscription.prepare(event))
            assert not problem, problem
            out.append((subscription.name, built))
    return out


def one(event: dict, **overrides: Any) -> dict:
    (only,) = to_posthog(event, **overrides)
    return only[1]


def test_a_track_is_its_event_with_the_page_context_and_the_library():
    event = {"type": "track", "event": "Order Completed", "userId": "u1", "anonymousId": "a1",
             "messageId": MESSAGE_UUID, "timestamp": "2024-11-28T13:26:00.123Z",
             "receivedAt": "2024-11-28T15:00:00.000Z", "properties": {"total": 27.5, "currency": "EUR"},
             "context": BROWSER}
    assert to_posthog(event) == [("Track Calls", {
        "event": "Order Completed",
        "distinct_id": "u1",
        "properties": {"total": 27.5, "currency": "EUR", **BROWSER_PROPERTIES,
                       "$current_url": "https://shop.example.com/pricing?plan=pro", "$pathname": "/pricing",
                       "$referrer": "https://www.google.com/"},
        "timestamp": "2024-11-28T13:26:00.123Z",  # the event's time, not receivedAt
        "uuid": MESSAGE_UUID.lower(),
    })]


def test_an_anonymous_track_is_sent_with_the_anonymous_id():
    event = {"type": "track", "event": "Viewed Pricing", "anonymousId": "a1", "userId": None,
             "messageId": MESSAGE_UUID, "timestamp": "2024-11-28T13:26:00Z", "context": SERVER}
    built = one(event)
    assert built["distinct_id"] == "a1"
    assert "$process_person_profile" not in built["properties"]  # PostHog's default: a person is kept


def test_an_empty_user_id_counts_as_none():
    event = {"type": "track", "event": "E", "userId": "", "anonymousId": "a1", "messageId": MESSAGE_UUID}
    assert one(event)["distinct_id"] == "a1"


@pytest.mark.parametrize("message_id", ["ajs-next-1732800360123-3c2b", "node-next-1", "x", "ünïcode ✓",
                                        "{9f2b6f0c-3e39-4f47-a2b6-8f0a7c1d5e21}"])
def test_event_uuid_is_uuid5_of_the_message_id_in_the_documented_namespace(message_id):
    assert event_uuid(message_id) == str(uuid.uuid5(NAMESPACE, message_id))


def test_a_message_id_that_is_not_a_uuid_becomes_its_uuid5():
    event = {"type": "track", "event": "E", "userId": "u1", "messageId": "ajs-next-1732800360123-3c2b"}
    built = one(event)
    assert built["uuid"] == str(uuid.uuid5(NAMESPACE, "ajs-next-1732800360123-3c2b"))
    assert one(event)["uuid"] == built["uuid"]  # the same on every send
    assert one({**event, "messageId": "ajs-next-other"})["uuid"] != built["uuid"]


def test_a_timestamp_in_another_offset_is_sent_in_utc():
    event = {"type": "track", "event": "E", "userId": "u1", "timestamp": "2024-11-28T14:26:00.5+01:00"}
    assert one(event)["timestamp"] == "2024-11-28T13:26:00.500Z"


def test_a_browser_page_is_a_pageview_with_the_page_in_posthogs_names():
    event = {"type": "page", "name": "Pricing", "category": "Marketing", "anonymousId": "a1",
             "messageId": MESSAGE_UUID, "timestamp": "2024-11-28T13:26:00.000Z", "context": BROWSER,
             "properties": {"url": "https://shop.example.com/pricing?plan=pro", "path": "/pricing",
                            "title": "Pricing", "referrer": "https://www.google.com/"}}
    assert to_posthog(event) == [("Page Calls", {
        "event": "$pageview",
        "distinct_id": "a1",
        "properties": {"name": "Pricing", "category": "Marketing", **event["properties"], **BROWSER_PROPERTIES,
                       "$current_url": "https://shop.example.com/pricing?plan=pro", "$pathname": "/pricing",
                       "$referrer": "https://www.google.com/", "title": "Pricing"},
        "timestamp": "2024-11-28T13:26:00.000Z",
        "uuid": MESSAGE_UUID.lower(),
    })]


def test_a_server_page_takes_its_url_from_the_properties_and_a_browser_one_from_the_context():
    server = {"type": "page", "name": "Docs", "userId": "u1", "context": SERVER,
              "properties": {"url": "https://docs.example.com/start", "path": "/start"}}
    properties = one(server)["properties"]
    assert (properties["$current_url"], properties["$pathname"]) == ("https://docs.example.com/start", "/start")
    assert "$referrer" not in properties and "title" not in properties
    browser = {"type": "page", "userId": "u1", "context": BROWSER, "properties": {"url": ""}}
    assert one(browser)["properties"]["$current_url"] == BROWSER["page"]["url"]  # a blank one is passed over


def test_a_screen_is_a_screen_event_with_its_name():
    event = {"type": "screen", "name": "Home", "userId": "u1", "properties": {"variant": "B"},
             "context": {"library": {"name": "analytics-ios", "version": "4.1.8"}, "ip": "198.51.100.4"}}
    built = one(event)
    assert built["event"] == "$screen"
    assert built["properties"] == {"variant": "B", "$screen_name": "Home", "$lib": "analytics-ios",
                                   "$lib_version": "4.1.8", "$ip": "198.51.100.4"}


def test_an_identify_sets_the_traits_and_merges_the_anonymous_visitor():
    event = {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": MESSAGE_UUID,
             "timestamp": "2024-11-28T13:26:01.000Z", "traits": {"email": "ada@example.com", "plan": "pro"},
             "context": SERVER}
    assert to_posthog(event) == [("Identify Calls", {
        "event": "$identify",
        "distinct_id": "u1",
        "properties": {**SERVER_PROPERTIES, "$anon_distinct_id": "a1",
                       "$set": {"email": "ada@example.com", "plan": "pro"}},
        "timestamp": "2024-11-28T13:26:01.000Z",
        "uuid": MESSAGE_UUID.lower(),
    })]


def test_an_anonymous_identify_sets_traits_without_a_merge():
    event = {"type": "identify", "anonymousId": "a1", "traits": {"plan": "free"}}
    built = one(event)
    assert built["distinct_id"] == "a1" and "$anon_distinct_id" not in built["properties"]
    assert built["properties"]["$set"] == {"plan": "free"}


def test_a_group_is_a_groupidentify_of_a_company():
    event = {"type": "group", "userId": "u1", "groupId": "g-42", "traits": {"name": "Initech", "employees": 120},
             "messageId": MESSAGE_UUID, "timestamp": "2024-11-28T13:26:02.000Z", "context": SERVER}
    assert one(event) == {
        "event": "$groupidentify", "distinct_id": "u1",
        "properties": {**SERVER_PROPERTIES, "$group_type": "company", "$group_key": "g-42",
                       "$group_set": {"name": "Initech", "employees": 120}},
        "timestamp": "2024-11-28T13:26:02.000Z", "uuid": MESSAGE_UUID.lower(),
    }


def test_an_alias_merges_the_previous_id_into_the_user():
    event = {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": MESSAGE_UUID, "context": SERVER}
    built = one(event)
    assert (built["event"], built["distinct_id"], built["properties"]["alias"]) == ("$create_alias", "u1", "a1")


def test_every_segment_call_type_has_a_preset():
    for kind in ("track", "page", "screen", "identify", "group", "alias"):
        event = {"type": kind, "event": "E", "userId": "u1", "groupId": "g", "previousId": "p"}
        assert len(to_posthog(event)) == 1, kind


def test_an_empty_event_name_is_refused_before_posthog_refuses_the_request():
    subscription = compiled_subscriptions(settings())[0]
    payload = subscription.prepare({"type": "track", "event": "", "userId": "u1"})
    assert posthog_event(SHAPES["event"], payload) == (None, "the event name is empty (PostHog refuses an event "
                                                             "without one)")


def test_a_mapped_field_wins_over_a_property_of_the_same_name():
    event = {"type": "track", "event": "E", "userId": "u1", "context": BROWSER,
             "properties": {"$current_url": "https://stale.example.com/"}}
    assert one(event)["properties"]["$current_url"] == BROWSER["page"]["url"]


# --- The README's mappings --------------------------------------------------------------------------


# The worked example of the README's PostHog section, as an operator writes it.
README_YAML = """\
destinations:
  product_analytics:
    type: posthog
    api_key: phc_k
    endpoint: https://eu.i.posthog.com
    mappings:
      - name: Track Calls
        fields:
          # Anonymous visitors' events as PostHog's person-less events.
          process_person_profile: {"@if": {blank: {"@path": "$.userId"}, then: true, else: false}}
          # The account an event belongs to, when the app sends one in context.groupId.
          groups:
            "@if": {exists: {"@path": "$.context.groupId"}, then: {company: {"@path": "$.context.groupId"}}}
"""


def test_the_readme_mapping_makes_anonymous_events_personless_and_adds_groups():
    config = load_config_text(README_YAML, "readme.yaml").destinations["product_analytics"]

    def track(event: dict) -> dict:
        (subscription,) = [s for s in compiled_subscriptions(config) if s.matches(event)]
        return posthog_event(SHAPES["event"], subscription.prepare(event))[0]["properties"]

    anonymous = track({"type": "track", "event": "Viewed", "anonymousId": "a1", "context": {"groupId": "g-1"}})
    assert anonymous["$process_person_profile"] is False  # a falsy else is kept (Segment would drop it)
    assert anonymous["$groups"] == {"company": "g-1"}
    known = track({"type": "track", "event": "Viewed", "userId": "u1", "anonymousId": "a1"})
    assert known["$process_person_profile"] is True and "$groups" not in known


def test_the_config_examples_group_type_mapping():
    example = Path(__file__).parents[3] / "config.example.yaml"
    config = load_config(example).destinations["product_analytics"]
    (subscription,) = [s for s in compiled_subscriptions(config) if s.name == "Group Calls"]

    def group_type(traits: dict) -> str:
        payload = subscription.prepare({"type": "group", "userId": "u1", "groupId": "g-1", "traits": traits})
        return posthog_event(SHAPES["group"], payload)[0]["properties"]["$group_type"]

    assert (group_type({"group_type": "team"}), group_type({"name": "Initech"})) == ("team", "company")


def test_cost_per_event_of_the_presets(capsys):
    """Trigger + mapping + validation + the PostHog event, per event (measured, not asserted)."""
    subscriptions = compiled_subscriptions(settings())
    events = {
        "track": {"type": "track", "event": "Order Completed", "userId": "u1", "anonymousId": "a1",
                  "messageId": "ajs-next-1732800360123-3c2b", "timestamp": "2024-11-28T13:26:00.123Z",
                  "properties": {"total": 27.5, "currency": "EUR", "products": [{"sku": "a", "price": 1}]},
                  "context": BROWSER},
        "page": {"type": "page", "name": "Pricing", "anonymousId": "a1", "messageId": MESSAGE_UUID,
                 "timestamp": "2024-11-28T13:26:00.000Z", "context": BROWSER,
                 "properties": {"url": BROWSER["page"]["url"], "path": "/pricing", "title": "Pricing"}},
        "identify": {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": MESSAGE_UUID,
                     "timestamp": "2024-11-28T13:26:01.000Z", "traits": {"email": "a@example.com"}, "context": SERVER},
    }

    def run(event: dict) -> None:
        for subscription in subscriptions:
            if subscription.matches(event):
                posthog_event(SHAPES[subscription.action.name], subscription.prepare(event))

    with capsys.disabled():
        for kind, event in events.items():
            n = 20_000
            seconds = min(timeit.repeat(lambda: run(event), number=n, repeat=3)) / n
            print(f"\nposthog {kind}: {seconds * 1e6:.2f} µs per event (6 triggers, 1 mapping, validation, event)")


@pytest.mark.parametrize("kind", ["track", "page", "screen", "identify", "group", "alias"])
def test_presets_do_not_touch_the_event(kind):
    event = {"type": kind, "event": "E", "userId": "u1", "groupId": "g", "previousId": "p",
             "properties": {"a": {"b": 1}}, "traits": {"t": [1]}, "context": BROWSER}
    before = msgspec.json.encode(event)
    to_posthog(event)
    assert msgspec.json.encode(event) == before
