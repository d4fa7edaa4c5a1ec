"""GA4's limits: what GA4 would drop without a word is refused before sending, with the reason."""

from __future__ import annotations

import pytest

from collector.destinations.google_analytics_4.limits import event_name, timestamp_micros

from .support import NOW, STAMP_MICROS, sent, track

NOW_MICROS = int(NOW * 1_000_000)


def refusal(event: dict, **overrides) -> str:
    _, ga4, body = sent(event, **overrides)
    reasons = [r for r in (ga4, body) if isinstance(r, str)]
    assert reasons, f"not refused: {ga4} {body}"
    return "; ".join(reasons)


def with_params(params: dict, event: str = "Video Played") -> dict:
    return {"mappings": [{"name": "Custom Event", "fields": {"params": params}}]}


@pytest.mark.parametrize(("name", "reason"), [
    ("!!!", "the event name '!!!' has no character GA4 accepts"),
    ("Session Start", None),  # not reserved: GA4's names are case-sensitive
    ("session start", "the event name 'session_start' is reserved by GA4"),
    ("first_visit", "the event name 'first_visit' is reserved by GA4"),
    ("google signup", "event name 'google_signup' starts with a reserved prefix (google_, ga_, firebase_)"),
    ("Firebase Thing", None),
])
def test_custom_event_names(name, reason):
    _, ga4, _ = sent(track(name))
    if reason is None:
        assert isinstance(ga4, dict)
    else:
        assert reason in ga4


def test_event_name_rules():
    assert event_name("Order  Completed") == "Order__Completed"
    assert event_name("_private event") == "private_event"
    assert event_name("x" * 50) == "x" * 40
    assert event_name("Mixed Case", lowercase=True) == "mixed_case"


@pytest.mark.parametrize(("params", "reason"), [
    ({"bad-name": 1}, "param name 'bad-name' is not [A-Za-z][A-Za-z0-9_]* of at most 40 characters"),
    ({"p" * 41: 1}, f"param name '{'p' * 41}' is not"),
    ({"ga_thing": 1}, "param name 'ga_thing' starts with a reserved prefix"),
    ({"nested": {"a": 1}}, "param nested is an object: GA4 takes text, numbers or booleans (only items is a list)"),
    ({"tags": ["a", "b"]}, "param tags is a list"),
    ({"label": "x" * 101}, "param label has 101 characters, more than GA4's 100"),
    ({f"p{i}": i for i in range(25)}, "26 params, more than GA4's 25 an event"),  # with engagement_time_msec
])
def test_params_beyond_ga4s_limits_are_refused(params, reason):
    assert reason in refusal(track("Video Played"), **with_params(params))


def test_params_within_the_limits_pass():
    params = {f"p{i}": "x" * 100 for i in range(24)}
    _, ga4, _ = sent(track("Video Played"), **with_params(params))
    assert ga4["params"] == {**params, "engagement_time_msec": 1}


def test_the_page_params_may_be_longer():
    url = "https://shop.example/?" + "q" * 900
    page = {"type": "page", "anonymousId": "a", "context": {"page": {"url": url, "title": "t" * 300}}}
    _, ga4, _ = sent(page)
    assert ga4["params"]["page_location"] == url
    too_long = {"type": "page", "anonymousId": "a", "context": {"page": {"title": "t" * 301}}}
    assert "param page_title has 301 characters, more than GA4's 300" in refusal(too_long)


@pytest.mark.parametrize(("products", "reason"), [
    ([{"price": 3}], "items[0] has neither item_id nor item_name"),
    ([{"name": "x" * 101}], "items[0].item_name has 101 characters, more than GA4's 100"),
    ([{"product_id": "a"}, {"product_id": ["b", "c"]}], "items[1].item_id: expected string, got array"),
])
def test_items_beyond_ga4s_limits_are_refused(products, reason):
    from collector.destinations.actions.fields import PayloadError

    event = track("Cart Viewed", {"products": products})
    try:
        found = refusal(event)
    except PayloadError as error:  # refused by the fields' validation already
        found = str(error)
    assert reason in found


def test_a_null_product_describes_nothing_and_is_left_out():
    _, ga4, _ = sent(track("Cart Viewed", {"products": [{"product_id": "a"}, None]}))
    assert ga4["params"]["items"] == [{"item_id": "a"}]


def test_custom_item_params_are_counted():
    mapping = {"name": "Cart Viewed", "fields": {"items": [
        {"item_id": "a", **{f"custom{i}": i for i in range(11)}}]}}
    reason = refusal(track("Cart Viewed", {}), mappings=[mapping])
    assert "items[0] has 11 custom params, more than GA4's 10" in reason
    mapping["fields"]["items"][0].pop("custom10")
    assert isinstance(sent(track("Cart Viewed", {}), mappings=[mapping])[1], dict)


def test_a_currency_is_an_iso_code_and_a_value_may_go_without_one():
    properties = {"value": 3, "products": [{"name": "x"}]}
    _, ga4, _ = sent(track("Cart Viewed", properties))
    assert ga4["params"]["value"] == 3 and "currency" not in ga4["params"]  # taken by GA4: no revenue
    assert "currency 'euro' is not a 3-letter ISO 4217 code" in refusal(
        track("Cart Viewed", {**properties, "currency": "euro"}))
    _, ga4, _ = sent(track("Cart Viewed", {**properties, "currency": "eur"}))
    assert ga4["params"]["currency"] == "EUR"


@pytest.mark.parametrize(("properties", "reason"), [
    ({"plan": "x" * 37}, "user property plan has 37 characters, more than GA4's 36"),
    ({"user_id": "u"}, "user property name 'user_id' is reserved by GA4"),
    ({"firebase_x": "u"}, "user property name 'firebase_x' is reserved by GA4"),
    ({"a_very_long_property_name": 1}, "user property name 'a_very_long_property_name' is not"),
    ({"address": {"city": "Köln"}}, "user property address is an object"),
])
def test_user_properties_beyond_ga4s_limits_are_refused(properties, reason):
    mapping = {"name": "Custom Event", "fields": {"user_properties": {"@path": "$.traits"}}}
    assert reason in refusal(track("Video Played", traits=properties), mappings=[mapping])


def test_user_properties_are_sent_as_values():
    mapping = {"name": "Custom Event", "fields": {"user_properties": {"@path": "$.traits"}}}
    _, _, body = sent(track("Video Played", traits={"plan": "pro", "seats": 3}), mappings=[mapping])
    assert body["user_properties"] == {"plan": {"value": "pro"}, "seats": {"value": 3}}


def test_a_long_user_id_is_refused_by_its_field():
    from collector.destinations.actions.fields import PayloadError

    with pytest.raises(PayloadError, match="user_id: 257 characters, more than the maximum 256"):
        sent(track("Video Played", userId="u" * 257))


def test_an_app_stream_needs_app_instance_id():
    app = {"measurement_id": None, "firebase_app_id": "1:1234:android:abcd"}
    assert "an app stream (firebase_app_id) needs app_instance_id" in refusal(track("Video Played"), **app)
    mapping = {"name": "Custom Event", "fields": {"app_instance_id": {"@path": "$.context.device.id"}}}
    event = track("Video Played", context={"device": {"id": "f" * 32}})
    _, _, body = sent(event, **app, mappings=[mapping])
    assert body == {"app_instance_id": "f" * 32, "user_id": "user-1"}


def test_the_72_hour_window():
    hour = 3600 * 1_000_000
    assert timestamp_micros("2026-03-02T11:59:00.000Z", NOW_MICROS) == STAMP_MICROS
    assert timestamp_micros("2026-02-27T12:05:00.000Z", NOW_MICROS) == NOW_MICROS - 72 * hour + 5 * 60_000_000
    assert "more than 72 hours old" in timestamp_micros("2026-02-27T12:00:30.000Z", NOW_MICROS)
    assert "more than 72 hours old" in timestamp_micros("2025-03-02T12:00:00.000Z", NOW_MICROS)
    # A little ahead is the clocks' skew: sent as now. Further ahead GA4 would drop it.
    assert timestamp_micros("2026-03-02T12:00:30.000Z", NOW_MICROS) == NOW_MICROS
    assert "in the future" in timestamp_micros("2026-03-02T12:05:00.000Z", NOW_MICROS)
    reason = refusal(track("Video Played", timestamp="2026-02-20T10:00:00Z"))
    assert reason == "timestamp 2026-02-20T10:00:00.000Z is more than 72 hours old; GA4 drops such events"


def test_every_problem_of_an_event_is_named_at_once():
    reason = refusal(track("!!!", timestamp="2020-01-01T00:00:00Z"), **with_params({"bad-name": 1}))
    assert "has no character GA4 accepts" in reason and "bad-name" in reason and "72 hours" in reason
