"""What Meta would refuse, refused before sending with a clear reason; what can be mended, mended."""

from __future__ import annotations

from typing import Any

import pytest

from collector.destinations.facebook_conversions.events import server_event

from .support import NOW, iso

DAY = 86400


def payload(**fields: Any) -> dict[str, Any]:
    """A validated payload of a website event, as the layer hands it over."""
    base = {"event_name": "PageView", "event_time": iso(NOW - 60), "event_id": "m1",
            "event_source_url": "https://shop.example.com/", "client_user_agent": "Mozilla/5.0",
            "client_ip_address": "203.0.113.7"}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def test_a_valid_event_passes():
    assert server_event(payload(), "other", NOW) == {
        "event_name": "PageView", "event_time": int(NOW - 60), "event_id": "m1", "action_source": "website",
        "event_source_url": "https://shop.example.com/",
        "user_data": {"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0"}}


@pytest.mark.parametrize(("age_days", "source", "refused"), [
    (6.9, None, False), (7.1, None, True), (7.1, "physical_store", False), (61.9, "physical_store", False),
    (62.1, "physical_store", True), (7.1, "email", True),
])
def test_events_older_than_meta_takes_are_refused(age_days, source, refused):
    event = server_event(payload(event_time=iso(NOW - age_days * DAY), action_source=source), "other", NOW)
    if refused:
        limit = 62 if source == "physical_store" else 7
        assert isinstance(event, str) and event.startswith(f"event_time {iso(NOW - age_days * DAY)} is ")
        assert event.endswith(f"days old; Meta refuses {source or 'website'} events more than {limit} days old")
    else:
        assert isinstance(event, dict), event


def test_events_ahead_of_the_clock_are_refused_beyond_a_minute():
    assert isinstance(server_event(payload(event_time=iso(NOW + 50)), "other", NOW), dict)
    assert server_event(payload(event_time=iso(NOW + 120)), "other", NOW) == (
        f"event_time {iso(NOW + 120)} is 120s ahead of this clock; Meta refuses future events")


def test_action_source_website_only_with_a_url_and_a_user_agent():
    assert server_event(payload(client_user_agent=None), "other", NOW)["action_source"] == "other"
    assert server_event(payload(event_source_url=None), "app", NOW)["action_source"] == "app"
    refused = server_event(payload(event_source_url=None, action_source="website"), "other", NOW)
    assert refused.startswith("a website event needs event_source_url (Meta refuses it without)")
    refused = server_event(payload(client_user_agent=None, event_source_url=None), "website", NOW)
    assert refused.startswith("a website event needs event_source_url and client_user_agent")


def test_an_event_without_any_customer_information_is_refused():
    refused = server_event(payload(client_user_agent=None, client_ip_address=None), "other", NOW)
    assert refused.startswith("no customer information: Meta needs at least one user_data parameter")


@pytest.mark.parametrize(("custom", "reason"), [
    ({"currency": "USD"}, "a Purchase needs value (Meta refuses it without); map it"),
    ({"value": 10}, "a Purchase needs currency (Meta refuses it without); map it"),
    ({}, "a Purchase needs value and currency (Meta refuses it without); map it"),
    ({"value": 10, "currency": "dollars"}, "currency 'dollars' is not an ISO 4217 code such as USD"),
    ({"value": 10, "custom_data": {"currency": 840}}, "currency 840 is not an ISO 4217 code such as USD"),
])
def test_a_purchase_needs_value_and_a_currency_code(custom, reason):
    assert server_event(payload(event_name="Purchase", **custom), "other", NOW) == reason


def test_contents_are_mended_and_counted_unless_num_items_is_mapped():
    contents = [{"id": "a", "quantity": 2}, {"quantity": 5}, {"id": "b", "item_price": 3.5}]
    custom = server_event(payload(contents=contents, value=1, currency="usd"), "other", NOW)["custom_data"]
    assert custom == {"value": 1, "currency": "USD", "content_type": "product", "num_items": 3,
                      "contents": [{"id": "a", "quantity": 2}, {"id": "b", "item_price": 3.5, "quantity": 1}]}
    custom = server_event(payload(contents=[{"quantity": 1}], num_items=4, content_type="product_group"),
                          "other", NOW)["custom_data"]
    assert custom == {"num_items": 4, "content_type": "product_group"}


def test_named_custom_data_fields_win_over_the_free_custom_data():
    custom = server_event(payload(custom_data={"value": "x", "tier": "gold"}, value=5), "other", NOW)["custom_data"]
    assert custom == {"value": 5, "tier": "gold"}


def test_limited_data_use_is_passed_with_its_country_and_state():
    event = server_event(payload(data_processing_options=["LDU"], data_processing_options_country=1,
                                 data_processing_options_state=1000), "other", NOW)
    assert (event["data_processing_options"], event["data_processing_options_country"],
            event["data_processing_options_state"]) == (["LDU"], 1, 1000)
    assert "data_processing_options" not in server_event(payload(), "other", NOW)
