"""Segment spec events in, Mixpanel records out: the presets' triggers and mappings, Segment's
identity rules, $insert_id, time, reserved properties, purchases, profiles, groups, alias."""

from __future__ import annotations

import hashlib
import re

import pytest

from collector.destinations.mixpanel.useragent import browser

from .expected import TOKEN
from .support import WHEN_MS, build, call, imported, kinds, reasons, send, track


# --- Track, page, screen --------------------------------------------------------------------------


@pytest.mark.parametrize(("user", "anonymous", "distinct_id"), [
    ("u1", "a1", "u1"),  # the user id wins
    (None, "a1", "a1"),  # else the anonymous id
    (None, None, ""),    # else "": an event of no user (Mixpanel's documented value)
])
async def test_distinct_id_and_the_ids_of_simplified_id_merge(double, http, user, anonymous, distinct_id):
    outcome = await send(build(double, http), [track("Signed Up", {"plan": "pro"}, user=user, anonymous=anonymous)])
    assert outcome.kind == "ok", outcome
    [event] = imported(double)
    properties = event["properties"]
    assert properties["distinct_id"] == distinct_id
    assert (properties.get("$user_id"), properties.get("$identified_id")) == (user, user)
    assert (properties.get("$device_id"), properties.get("$anon_id")) == (anonymous, anonymous)
    assert properties["plan"] == "pro" and event["event"] == "Signed Up"


async def test_a_message_id_that_fits_is_the_insert_id_and_time_is_in_milliseconds(double, http):
    event = track("Signed Up", messageId="0b5f3c1e-7a2d-4e8f-9c61-3d2b1a0f9e8d")
    await send(build(double, http), [event])
    properties = imported(double)[0]["properties"]
    assert properties["$insert_id"] == "0b5f3c1e-7a2d-4e8f-9c61-3d2b1a0f9e8d"
    assert properties["time"] == WHEN_MS


@pytest.mark.parametrize("message_id", [
    "ajs-next-1732800360123-3c2b2c4a-6f1e-4b9a-9a53-0f6f2f1d7c11",  # analytics.js: 60 characters
    "node-next-1732800360123-abc",                                  # fits the length, not the characters? it does
    "msg_01H8X9Z/with:slashes",                                      # characters Mixpanel refuses
])
async def test_a_message_id_that_does_not_fit_becomes_a_stable_hash(double, http, message_id):
    destination = build(double, http)
    await send(destination, [track("Signed Up", messageId=message_id)])
    [event] = imported(double)
    insert_id = event["properties"]["$insert_id"]
    assert re.fullmatch(r"[A-Za-z0-9-]{1,36}", insert_id)
    if re.fullmatch(r"[A-Za-z0-9-]{1,36}", message_id):
        assert insert_id == message_id
    else:
        assert insert_id == hashlib.sha256(message_id.encode()).hexdigest()[:36]
    # Sent again (a retry, a replay): the same id, so Mixpanel drops the repeat.
    await send(destination, [track("Signed Up", messageId=message_id)])
    assert len(double.duplicates) == 1 and len(double.accepted) == 1


async def test_without_a_timestamp_the_time_is_when_the_collector_received_it(double, http):
    event = track("Signed Up", receivedAt="2024-11-28T13:26:05.000Z")
    del event["timestamp"]
    await send(build(double, http), [event])
    assert imported(double)[0]["properties"]["time"] == 1732800365000


async def test_reserved_properties_are_not_taken_from_the_event(double, http):
    reserved = {"time": 1, "id": "x", "distinct_id": "x", "$insert_id": "x", "$user_id": "x", "$anon_id": "x",
                "$group_id": "x"}
    event = track("Signed Up", {**reserved, "$current_url": "https://mine.example", "kept": True},
                  context={"groupId": "g1", "page": {"url": "https://context.example"}})
    await send(build(double, http), [event])
    properties = imported(double)[0]["properties"]
    assert properties["time"] == WHEN_MS and properties["distinct_id"] == "u1" and "id" not in properties
    assert (properties["$user_id"], properties["$anon_id"], properties["$group_id"]) == ("u1", "a1", "g1")
    assert properties["$insert_id"] == event["messageId"]
    assert properties["$current_url"] == "https://mine.example" and properties["kept"] is True


async def test_a_mobile_context_becomes_mixpanels_default_properties(double, http):
    context = {
        "app": {"name": "Shop", "version": "1.2", "build": 45, "namespace": "com.shop"},
        "device": {"type": "ios", "model": "iPhone7,2", "manufacturer": "Apple", "name": "maguro",
                   "advertisingId": "7A3C", "adTrackingEnabled": True},
        "os": {"name": "iOS", "version": "17.1"}, "network": {"wifi": True, "carrier": "T-Mobile"},
        "screen": {"width": 390, "height": 844, "density": 3}, "library": {"name": "analytics-ios", "version": "4.1"},
        "locale": "en-US", "timezone": "Europe/Berlin", "ip": "198.51.100.4", "location": {"country": "DE"},
        "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
    }
    await send(build(double, http), [call("screen", name="Home", properties={"variant": "B"}, context=context)])
    properties = imported(double)[0]["properties"]
    assert {key: properties.get(key) for key in (
        "$app_name", "$app_version_string", "$app_build_number", "$app_namespace", "$device_type", "$model",
        "$manufacturer", "$device", "$device_name", "advertising_id", "$ios_ifa", "ad_tracking_enabled", "$os",
        "$os_version", "$wifi_enabled", "$carrier", "$screen_width", "$screen_height", "$screen_density", "mp_lib",
        "$lib_version", "$locale", "timezone", "ip", "mp_country_code", "utm_campaign", "utm_source", "utm_medium",
        "variant")} == {
        "$app_name": "Shop", "$app_version_string": "1.2", "$app_build_number": 45, "$app_namespace": "com.shop",
        "$device_type": "ios", "$model": "iPhone7,2", "$manufacturer": "Apple", "$device": "maguro",
        "$device_name": "maguro", "advertising_id": "7A3C", "$ios_ifa": "7A3C", "ad_tracking_enabled": True,
        "$os": "iOS", "$os_version": "17.1", "$wifi_enabled": True, "$carrier": "T-Mobile", "$screen_width": 390,
        "$screen_height": 844, "$screen_density": 3, "mp_lib": "analytics-ios", "$lib_version": "4.1",
        "$locale": "en-US", "timezone": "Europe/Berlin", "ip": "198.51.100.4", "mp_country_code": "DE",
        "utm_campaign": "spring", "utm_source": "newsletter", "utm_medium": "email", "variant": "B"}


@pytest.mark.parametrize(("event", "name"), [
    (call("page", name="Pricing", properties={"path": "/pricing"}), "Viewed Pricing"),
    (call("page", properties={"path": "/"}), "Loaded a Page"),  # Segment would send "Viewed "
    (call("page", name="", properties={}), "Loaded a Page"),
    (call("screen", name="Home"), "Viewed Home"),
    (call("screen"), "Loaded a Screen"),
])
async def test_pages_and_screens_are_named_as_segment_does_and_unnamed_ones_too(double, http, event, name):
    await send(build(double, http), [event])
    assert [e["event"] for e in imported(double)] == [name]
    assert imported(double)[0]["properties"].get("event_original_name") == event.get("name")


@pytest.mark.parametrize(("user_agent", "expected"), [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
     ("Chrome", "131.0.0.0")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36 Edg/120.0.2210.91", ("Microsoft Edge", "120.0.2210.91")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Mobile/15E148 Safari/604.1", ("Mobile Safari", "17.1")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0", ("Firefox", "121.0")),
    ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 "
     "OPR/105.0.0.0", ("Opera", "105.0.0.0")),
    ("curl/8.4.0", (None, None)),
])
def test_the_browser_is_read_from_the_user_agent(user_agent, expected):
    assert browser(user_agent) == expected


# --- Order Completed -------------------------------------------------------------------------------


ORDER = {"order_id": "o-1", "total": 30, "revenue": 25, "currency": "EUR", "coupon": "X", "affiliation": "shop",
         "products": [{"product_id": "p1", "sku": "s1", "price": "10.50", "quantity": 1, "colour": "red"},
                      {"product_id": "p2", "price": 9.5, "quantity": "2"}]}


async def test_order_completed_sends_the_order_and_a_product_purchased_per_product(double, http):
    order = track("Order Completed", ORDER)
    assert (await send(build(double, http), [order])).kind == "ok"
    [request] = double.requests  # one /import for the order and its products
    assert [e["event"] for e in request.json] == ["Order Completed", "Product Purchased", "Product Purchased"]
    placed, first, second = request.json
    assert placed["properties"]["products"] == ORDER["products"] and placed["properties"]["total"] == 30
    for n, product in enumerate((first, second), start=1):
        properties = product["properties"]
        assert not {"total", "revenue", "currency", "coupon", "affiliation", "products"} & set(properties)
        assert properties["order_id"] == "o-1" and properties["distinct_id"] == "u1"
        assert properties["time"] == WHEN_MS - n
    # Each product's own keys, its price and quantity validated as numbers, unknown keys kept.
    first, second = first["properties"], second["properties"]
    assert (first["price"], first["colour"], second["quantity"]) == (10.5, "red", 2)
    ids = [e["properties"]["$insert_id"] for e in request.json]
    assert ids[0] == order["messageId"] and len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{36}", i) for i in ids[1:])


async def test_product_events_can_be_switched_off_and_other_tracks_are_not_purchases(double, http):
    destination = build(double, http, mappings=[
        {"name": "Order Completed Calls", "fields": {"generatePurchaseEventPerProduct": False}}])
    await send(destination, [track("Order Completed", ORDER), track("Product Added", ORDER["products"][0])])
    assert [e["event"] for e in imported(double)] == ["Order Completed", "Product Added"]


# --- Identify, group, alias ------------------------------------------------------------------------


async def test_identify_merges_the_ids_and_sets_the_profile(double, http):
    identify = call("identify", traits={"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace",
                                        "createdAt": "2023-02-01T09:30:00Z", "phone": "+4930123", "username": "ada",
                                        "plan": "pro"},
                    context={"ip": "198.51.100.4"})
    assert (await send(build(double, http), [identify])).kind == "ok"
    [merge] = double.identifies
    assert merge["properties"] == {"distinct_id": "u1", "$identified_id": "u1", "$anon_id": "a1", "$user_id": "u1",
                                   "$device_id": "a1", "time": WHEN_MS, "$insert_id": identify["messageId"]}
    assert double.profile_updates == [{"$token": TOKEN, "$distinct_id": "u1", "$ip": "198.51.100.4", "$set": {
        "$email": "ada@example.com", "$first_name": "Ada", "$last_name": "Lovelace", "$name": "Ada Lovelace",
        "$created": "2023-02-01T09:30:00Z", "$phone": "+4930123", "$username": "ada", "plan": "pro"}}]
    assert [r.path for r in double.requests] == ["/import", "/engage"]


async def test_an_anonymous_identify_sets_the_anonymous_profile_without_the_collectors_location(double, http):
    assert (await send(build(double, http), [call("identify", user=None, traits={"plan": "free"})])).kind == "ok"
    assert double.identifies == [] and double.profiles == {"a1": {"plan": "free"}}
    assert double.profile_updates[0]["$ip"] == "0"  # "0": Mixpanel does not geolocate the request


async def test_an_identify_with_nothing_to_send_is_passed_without_a_request(double, http):
    outcome = await send(build(double, http), [call("identify", anonymous=None)])
    assert outcome.kind == "skip" and double.requests == []


async def test_group_sets_the_group_profile(double, http):
    group = call("group", groupId="g-42", traits={"name": "Initech", "employees": 120, "created_at": "2020-01-01"})
    assert (await send(build(double, http), [group])).kind == "ok"
    assert double.group_updates == [{"$token": TOKEN, "$group_key": "$group_id", "$group_id": "g-42", "$set": {
        "$name": "Initech", "employees": 120, "$created": "2020-01-01"}}]


async def test_a_group_key_takes_the_group_id_from_the_trait_of_that_name(double, http):
    destination = build(double, http, mappings=[{"name": "Group Calls", "fields": {"group_key": "company_id"}}])
    await send(destination, [call("group", groupId="g-42", traits={"company_id": "c-7", "name": "Initech"})])
    assert double.groups == {("company_id", "c-7"): {"company_id": "c-7", "$name": "Initech"}}


ALIAS_MAPPING = {"name": "Alias Calls", "action": "alias", "trigger": 'type = "alias"'}


async def test_alias_has_no_preset_and_a_mapping_sends_create_alias(double, http):
    alias = call("alias", user="u1", anonymous=None, previousId="a1")
    assert (await send(build(double, http), [alias])).kind == "skip"  # unmatched: counted, logged, passed
    assert double.requests == []
    assert (await send(build(double, http, mappings=[ALIAS_MAPPING]), [alias])).kind == "ok"
    assert [a["properties"] for a in double.aliases] == [
        {"distinct_id": "a1", "alias": "u1", "time": WHEN_MS, "$insert_id": alias["messageId"]}]


async def test_an_alias_onto_itself_or_without_previous_id_is_refused_alone(double, http):
    events = [call("alias", previousId="u1"), call("alias"), call("alias", previousId="a0")]
    outcome = await send(build(double, http, mappings=[ALIAS_MAPPING]), events)
    assert kinds(outcome, 3) == ["reject", "reject", "ok"]
    first, second, _ = reasons(outcome, 3)
    assert "other than the distinct_id" in first and "distinct_id: required but missing" in second
    assert [a["properties"]["distinct_id"] for a in double.aliases] == ["a0"]


# --- Custom mappings -------------------------------------------------------------------------------


# The custom mapping of the README's Mixpanel section, word for word.
README_MAPPINGS = """
mappings:
  - name: Track Calls            # replaces the preset: its trigger and other fields stay
    fields:
      event:                     # "Signed Up" -> "signed_up"
        "@case":
          operator: lower
          value: {"@replace": {value: {"@path": "$.event"}, pattern: " ", replacement: "_"}}
      event_properties:          # the event's properties, and the user's e-mail with them
        "@merge":
          objects:
            - {"@path": "$.properties"}
            - {email: {"@path": "$.context.traits.email"}}
  - name: Order Completed Calls
    fields:
      generatePurchaseEventPerProduct: false   # the order alone, no "Product Purchased" events
  - name: Alias Calls            # alias has no preset: this adds one
    action: alias
    trigger: type = "alias"
"""


async def test_the_readme_mapping_works(double, http):
    import yaml

    destination = build(double, http, **yaml.safe_load(README_MAPPINGS))
    events = [track("Signed Up", {"plan": "pro"}, context={"traits": {"email": "ada@example.com"}}),
              track("Order Completed", ORDER), call("alias", previousId="a0")]
    assert (await send(destination, events)).kind == "ok"
    assert [e["event"] for e in double.imported] == ["signed_up", "Order Completed", "$create_alias"]
    properties = double.imported[0]["properties"]
    assert (properties["plan"], properties["email"], properties["$current_url"] if "$current_url" in properties
            else None) == ("pro", "ada@example.com", None)


def test_the_catalogue_prints_each_preset_in_full_without_yaml_aliases():
    from collector.destinations.actions.catalogue import describe

    text = describe("mixpanel")
    block = text[text.index("\ndestinations:"):]
    assert "*id" not in block and "&id" not in block
    assert block.count("'@path': $.messageId") == 5  # every preset but Group Calls carries the insert id
