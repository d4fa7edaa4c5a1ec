"""The presets: Segment's spec events in, GA4 events out (mapped, validated, built; not sent)."""

from __future__ import annotations

import pytest

from collector.destinations.google_analytics_4 import GoogleAnalytics4
from collector.destinations.google_analytics_4.presets import SPEC_EVENTS

from .support import STAMP, STAMP_MICROS, mapped, sent, track

GAME = {"product_id": "507f1f77", "sku": "45790-32", "name": "Monopoly: 3rd Edition", "brand": "Hasbro",
        "category": "Games", "variant": "200 pieces", "price": 18.99, "quantity": 1, "coupon": "MAYDEALS",
        "position": 3}
GAME_ITEM = {"item_id": "507f1f77", "item_name": "Monopoly: 3rd Edition", "item_brand": "Hasbro",
             "item_category": "Games", "item_variant": "200 pieces", "price": 18.99, "quantity": 1,
             "coupon": "MAYDEALS"}
CARDS = {"sku": "46493-32", "name": "Uno Card Game", "price": "3.25", "quantity": 2, "position": 2}
CARDS_ITEM = {"item_id": "46493-32", "item_name": "Uno Card Game", "price": 3.25, "quantity": 2, "index": 2}
ENGAGED = {"engagement_time_msec": 1}

SPEC_CASES = [
    ("Products Searched", {"query": "blue hotel"}, "search", {"search_term": "blue hotel"}),
    ("Product List Viewed", {"list_id": "hot_deals_1", "category": "Deals", "products": [GAME, CARDS]},
     "view_item_list", {"item_list_id": "hot_deals_1", "item_list_name": "Deals",
                        "items": [{**GAME_ITEM, "index": 3}, CARDS_ITEM]}),
    ("Product Clicked", GAME, "select_item", {"items": [GAME_ITEM]}),
    ("Product Viewed", {**GAME, "currency": "usd", "value": 18.99}, "view_item",
     {"currency": "USD", "value": 18.99, "items": [GAME_ITEM]}),
    ("Product Added", {**GAME, "cart_id": "c1"}, "add_to_cart", {"items": [GAME_ITEM]}),
    ("Product Removed", GAME, "remove_from_cart", {"items": [GAME_ITEM]}),
    ("Product Added to Wishlist", {**GAME, "wishlist_id": "w1"}, "add_to_wishlist", {"items": [GAME_ITEM]}),
    ("Cart Viewed", {"cart_id": "c1", "products": [CARDS]}, "view_cart", {"items": [CARDS_ITEM]}),
    ("Checkout Started", {"order_id": "o1", "value": 30, "revenue": 25, "shipping": 3, "tax": 2, "coupon": "HI",
                          "currency": "EUR", "products": [CARDS]},
     "begin_checkout", {"currency": "EUR", "value": 30, "coupon": "HI", "items": [CARDS_ITEM]}),
    ("Payment Info Entered", {"checkout_id": "k1", "order_id": "o1", "payment_method": "Visa"},
     "add_payment_info", {"payment_type": "Visa"}),
    ("Order Completed", {"order_id": 50314, "affiliation": "Google Store", "total": 27.5, "revenue": 25,
                         "shipping": 3, "tax": 2, "discount": 2.5, "coupon": "HI", "currency": "EUR",
                         "products": [GAME, CARDS]},
     "purchase", {"transaction_id": "50314", "affiliation": "Google Store", "value": 27.5, "shipping": 3, "tax": 2,
                  "coupon": "HI", "currency": "EUR", "items": [{**GAME_ITEM, "index": 3}, CARDS_ITEM]}),
    ("Order Completed", {"order_id": "o2", "revenue": 25, "currency": "EUR"}, "purchase",
     {"transaction_id": "o2", "value": 25, "currency": "EUR"}),  # no total: the revenue
    ("Order Refunded", {"order_id": "o1", "total": 27.5, "currency": "EUR"}, "refund",
     {"transaction_id": "o1", "value": 27.5, "currency": "EUR"}),
    ("Promotion Viewed", {"promotion_id": "promo_1", "creative": "top_banner_2", "name": "75% store-wide sale",
                          "position": "home_banner_top"},
     "view_promotion", {"promotion_id": "promo_1", "promotion_name": "75% store-wide sale",
                        "creative_name": "top_banner_2", "creative_slot": "home_banner_top"}),
    ("Promotion Clicked", {"promotion_id": "promo_1", "name": "Sale"}, "select_promotion",
     {"promotion_id": "promo_1", "promotion_name": "Sale"}),
    ("Signed Up", {"type": "organic", "first_name": "Peter"}, "sign_up", {"method": "organic"}),
    ("Signed In", {"username": "pgibbons", "method": "Google"}, "login", {"method": "Google"}),
]


def test_every_spec_event_of_the_brief_has_its_preset_and_case():
    presets = {p.name: p.action for p in GoogleAnalytics4.presets}
    assert {event: presets[event] for event in SPEC_EVENTS} == SPEC_EVENTS
    assert {event for event, *_ in SPEC_CASES} == set(SPEC_EVENTS)
    assert presets["Page Calls"] == "page_view" and presets["Custom Event"] == "custom_event"


@pytest.mark.parametrize(("event", "properties", "name", "params"), SPEC_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SPEC_CASES)])
def test_spec_events_become_ga4_recommended_events(event, properties, name, params):
    preset, ga4, body = sent(track(event, properties))
    assert preset == event
    assert ga4 == {"name": name, "params": {**params, **ENGAGED}, "timestamp_micros": STAMP_MICROS}
    assert body == {"client_id": "anon-1", "user_id": "user-1"}


def test_a_page_is_a_page_view_from_the_pages_context():
    page = {"type": "page", "name": "Pricing", "anonymousId": "anon-1", "timestamp": STAMP,
            "context": {"page": {"url": "https://shop.example/pricing?x=1", "referrer": "https://www.google.com/",
                                 "title": "Pricing – Shop", "path": "/pricing"}}}
    preset, ga4, body = sent(page)
    assert preset == "Page Calls"
    assert ga4 == {"name": "page_view", "timestamp_micros": STAMP_MICROS, "params": {
        "page_location": "https://shop.example/pricing?x=1", "page_referrer": "https://www.google.com/",
        "page_title": "Pricing – Shop", **ENGAGED}}
    assert body == {"client_id": "anon-1"}  # no userId: no user_id


@pytest.mark.parametrize(("event", "name"), [
    ("Video Played", "Video_Played"),
    ("  Newsletter: signed-up (footer)!", "Newsletter_signedup_footer"),
    ("1st Visit", "st_Visit"),
    ("Käse bestellt", "Kse_bestellt"),
    ("A" * 39 + " and more", "A" * 39 + "_"),
])
def test_any_other_track_is_a_custom_event_with_a_ga4_valid_name(event, name):
    preset, ga4, _ = sent(track(event, {"plan": "pro"}))
    assert preset == "Custom Event"
    assert ga4 == {"name": name, "params": ENGAGED, "timestamp_micros": STAMP_MICROS}  # params by hand, as Segment


def test_the_custom_event_can_lower_case_its_name():
    _, ga4, _ = sent(track("Video Played"), mappings=[{"name": "Custom Event", "fields": {"lowercase": True}}])
    assert ga4["name"] == "video_played"


def test_identify_group_alias_and_screen_match_no_preset():
    for event in ({"type": "identify", "userId": "u"}, {"type": "group", "groupId": "g"},
                  {"type": "alias", "userId": "u", "previousId": "a"}, {"type": "screen", "name": "Home"}):
        assert mapped(event) == []


def test_the_client_id_is_the_ga_cookie_id_then_the_anonymous_id_then_the_user_id():
    ga = {"Google Analytics 4": {"clientId": "1234567890.1700000000", "sessionId": "1700000500"}}
    _, ga4, body = sent(track("Video Played", integrations=ga))
    assert body["client_id"] == "1234567890.1700000000"
    assert ga4["params"]["session_id"] == "1700000500"
    assert sent(track("Video Played", integrations={"Google Analytics 4": True}))[2]["client_id"] == "anon-1"
    assert sent(track("Video Played", anonymousId=None))[2] == {"client_id": "user-1", "user_id": "user-1"}


def test_the_timestamp_is_sent_in_microseconds():
    _, ga4, _ = sent(track("Video Played", timestamp="2026-03-02T12:59:30+01:00"))
    assert ga4["timestamp_micros"] == STAMP_MICROS + 30_000_000
    assert STAMP == "2026-03-02T11:59:00.000Z"


def test_a_product_event_without_a_product_sends_no_empty_item():
    _, ga4, _ = sent(track("Product Viewed", {}))
    assert ga4 == {"name": "view_item", "params": ENGAGED, "timestamp_micros": STAMP_MICROS}


def test_a_purchase_without_order_id_is_refused_by_its_fields():
    from collector.destinations.actions.fields import PayloadError

    with pytest.raises(PayloadError, match="transaction_id: required but missing"):
        sent(track("Order Completed", {"total": 3, "currency": "EUR"}))
