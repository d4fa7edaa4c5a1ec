"""Payloads into Amplitude's records: times, user properties, revenue, purchases."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from collector.destinations.amplitude import events


@pytest.mark.parametrize("moment", [
    "1970-01-01T00:00:00.000Z", "2024-02-29T23:59:59.999Z", "2024-11-28T13:26:00.123Z", "1969-12-31T23:59:59.000Z",
    "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z", "2000-03-01T12:00:00.500Z",
])
def test_epoch_ms_of_the_normal_form(moment):
    parsed = datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    expected = (parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)).days * 86_400_000 + (
        parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)).seconds * 1000 + parsed.microsecond // 1000
    assert events.epoch_ms(moment) == expected


def test_a_session_before_1970_is_amplitudes_no_session():
    assert events.event({"event_type": "E", "session_id": "1969-12-31T23:59:59.000Z"})["session_id"] == -1
    assert events.event({"event_type": "E", "session_id": "2024-11-28T13:00:00.000Z"})["session_id"] == 1732798800000


def test_plain_user_properties_are_sent_as_they_are():
    payload = {"user_properties": {"plan": "pro"}, "campaign": {"source": None, "name": ""}, "referrer": ""}
    assert events.user_properties(payload) == {"plan": "pro"}
    assert events.user_properties({"campaign": {}}) is None


def test_the_campaign_and_referrer_are_set_always_and_once():
    payload = {"campaign": {"source": "news", "medium": "email", "name": "spring", "term": "t", "content": "c",
                            "other": "x"}, "referrer": "https://r"}
    assert events.user_properties(payload) == {
        "$set": {"utm_source": "news", "utm_medium": "email", "utm_campaign": "spring", "utm_term": "t",
                 "utm_content": "c", "referrer": "https://r"},
        "$setOnce": {"initial_utm_source": "news", "initial_utm_medium": "email", "initial_utm_campaign": "spring",
                     "initial_utm_term": "t", "initial_utm_content": "c", "initial_referrer": "https://r"}}


def test_with_operations_the_plain_values_join_set_and_win_over_the_campaign():
    payload = {"user_properties": {"plan": "pro", "utm_source": "mine", "$add": {"logins": 1}, "$unset": {"x": "-"},
                                   "$setOnce": {"first_plan": "free"}},
               "campaign": {"source": "news"}, "add": {"visits": 1}}
    assert events.user_properties(payload) == {
        "$set": {"utm_source": "mine", "plan": "pro"},
        "$setOnce": {"initial_utm_source": "news", "first_plan": "free"},
        "$add": {"visits": 1, "logins": 1},
        "$unset": {"x": "-"},
    }


def test_revenue_is_price_times_quantity_else_revenue_and_nothing_without_one():
    assert events.revenue_fields({"price": 2.5, "quantity": 3, "revenue": 99}, "sku-1") == {
        "revenue": 7.5, "revenueType": "Purchase", "quantity": 3, "price": 2.5, "productId": "sku-1"}
    assert events.revenue_fields({"revenue": -20, "revenueType": "Refund"}, None) == {
        "revenue": -20, "revenueType": "Refund"}
    assert events.revenue_fields({"revenue": 0, "price": 0, "quantity": 1}, "p") == {}
    assert events.revenue_fields({"price": 4}, None) == {}


@pytest.mark.parametrize(("quantity", "sent"), [(0.5, 1), (1.5, 2), (2.5, 3), (2.4, 2), (-1.5, -1)])
def test_quantity_is_rounded_as_javascript_does(quantity, sent):
    assert events.revenue_fields({"revenue": 1, "quantity": quantity}, None)["quantity"] == sent


def test_platform_names_and_the_web_default():
    assert events.event({"event_type": "E", "platform": "IOS"})["platform"] == "iOS"
    assert events.event({"event_type": "E", "platform": "android"})["platform"] == "Android"
    assert events.event({"event_type": "E", "library": "analytics.js"})["platform"] == "Web"
    assert "platform" not in events.event({"event_type": "E", "library": "analytics-python"})
    assert events.event({"event_type": "E"})["library"] == "segment"


def test_a_purchase_without_products_is_one_event_with_its_revenue():
    (only,) = events.purchase_events({"event_type": "Order Completed", "insert_id": "m", "revenue": 12.5,
                                      "event_properties": {"total": 12.5}})
    assert only == {"event_type": "Order Completed", "insert_id": "m", "event_properties": {"total": 12.5},
                    "revenue": 12.5, "revenueType": "Purchase", "library": "segment"}


def test_revenue_per_product_leaves_the_order_without_revenue():
    order, first, second = events.purchase_events({
        "event_type": "Order Completed", "insert_id": "m", "user_id": "user-1", "revenue": 30,
        "track_revenue_per_product": True, "user_properties": {"plan": "pro"},
        "products": [{"product_id": "a", "price": 10, "quantity": 2}, {"productId": "b", "revenue": 10}]})
    assert "revenue" not in order and order["user_properties"] == {"plan": "pro"}
    assert first == {"user_id": "user-1", "library": "segment", "event_type": "Product Purchased",
                     "event_properties": {"product_id": "a", "price": 10, "quantity": 2}, "insert_id": "m-2",
                     "revenue": 20, "revenueType": "Purchase", "quantity": 2, "price": 10, "productId": "a"}
    assert (second["revenue"], second["productId"], second["insert_id"]) == (10, "b", "m-3")


def test_product_events_have_no_insert_id_when_the_order_has_none():
    _, product = events.purchase_events({"event_type": "Order Completed", "products": [{"price": 1}]})
    assert "insert_id" not in product
