"""Destination filters: Segment's drop / sample / drop_properties / allow_properties, in its order."""

from __future__ import annotations

import copy

import msgspec
import pytest

from collector.destinations.actions.filters import compile_filters, compiled_filters
from collector.destinations.actions.settings import FilterConfig, SettingsError


def filters(*specs: dict) -> list[FilterConfig]:
    return msgspec.convert(list(specs), list[FilterConfig])


def run(specs: list[dict], event: dict) -> dict | None:
    apply = compile_filters(filters(*specs))
    return event if apply is None else apply(event)


EVENT = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "m-1",
    "userId": "u-1",
    "anonymousId": "a-1",
    "properties": {"total": 30, "email": "x@example.com", "coupon": "C",
                   "products": [{"sku": "s1", "price": 10}, {"sku": "s2", "price": 20}]},
    "context": {"ip": "203.0.113.7", "page": {"url": "https://shop.example.com/?q=1", "title": "Shop"}},
}

# (filters, expected event; None = dropped)
TABLE = [
    pytest.param([{"if": 'event = "Order Completed"', "drop": True}], None, id="drop-matching"),
    pytest.param([{"if": 'event = "Other"', "drop": True}], EVENT, id="drop-not-matching"),
    pytest.param([{"drop": True}], None, id="drop-without-if-drops-all"),
    pytest.param([{"if": "!(userId = null)", "drop": True}], None, id="drop-fql-negation"),
    pytest.param([{"if": 'type = "track"', "drop_properties": {"properties": ["email", "absent"]}}],
                 {**EVENT, "properties": {k: v for k, v in EVENT["properties"].items() if k != "email"}},
                 id="drop-properties"),
    pytest.param([{"drop_properties": {"": ["anonymousId"], "context": ["ip"]}}],
                 {**{k: v for k, v in EVENT.items() if k != "anonymousId"},
                  "context": {"page": EVENT["context"]["page"]}},
                 id="drop-top-level-and-context"),
    pytest.param([{"drop_properties": {"context.page": ["url"]}}],
                 {**EVENT, "context": {"ip": "203.0.113.7", "page": {"title": "Shop"}}},
                 id="drop-in-nested-object"),
    pytest.param([{"drop_properties": {"properties.products": ["price"]}}],
                 {**EVENT, "properties": {**EVENT["properties"], "products": [{"sku": "s1"}, {"sku": "s2"}]}},
                 id="drop-in-each-object-of-a-list"),
    pytest.param([{"allow_properties": {"properties": ["total"]}}],
                 {**EVENT, "properties": {"total": 30}}, id="allow-properties"),
    pytest.param([{"allow_properties": {"": ["event"]}}],
                 {"type": "track", "event": "Order Completed", "messageId": "m-1"},
                 id="allow-top-level-keeps-type-and-messageId"),
    pytest.param([{"allow_properties": {"traits": ["a"]}}], EVENT, id="allow-in-absent-object-changes-nothing"),
    pytest.param([{"if": 'event = "Other"', "drop_properties": {"properties": ["email"]}}], EVENT,
                 id="property-filter-not-matching"),
    pytest.param([{"sample": {"percent": 0}}], None, id="sample-0-drops"),
    pytest.param([{"sample": {"percent": 100}}], EVENT, id="sample-100-keeps"),
    pytest.param([{"if": 'event = "Other"', "sample": {"percent": 0}}], EVENT, id="sample-applies-to-matching-only"),
    pytest.param([{"drop": True, "enabled": False}], EVENT, id="disabled-filter"),
    # Segment's order, whatever the order in the file: allow runs after drop_properties, so
    # dropping a key and then allowing it leaves it dropped.
    pytest.param([{"allow_properties": {"properties": ["total", "email"]}},
                  {"drop_properties": {"properties": ["email"]}}],
                 {**EVENT, "properties": {"total": 30}}, id="drop-properties-before-allow"),
    # Conditions are judged on the event as it arrived: dropping the property the second filter
    # tests does not stop the second filter.
    pytest.param([{"drop_properties": {"properties": ["coupon"]}},
                  {"if": 'properties.coupon = "C"', "allow_properties": {"properties": ["total"]}}],
                 {**EVENT, "properties": {"total": 30}}, id="conditions-see-the-original-event"),
    pytest.param([{"drop_properties": {"properties": ["email"]}}, {"drop": True}], None,
                 id="drop-wins-over-property-filters"),
]


@pytest.mark.parametrize(("specs", "expected"), TABLE)
def test_filter_table(specs, expected):
    event = copy.deepcopy(EVENT)
    assert run(specs, event) == expected
    assert event == EVENT  # never modified


def test_only_what_changes_is_copied():
    result = run([{"drop_properties": {"context.page": ["title"]}}], EVENT)
    assert result is not EVENT and result["context"] is not EVENT["context"]
    assert result["properties"] is EVENT["properties"]  # untouched objects are shared, not copied
    assert result["context"]["ip"] == "203.0.113.7"


def test_an_event_that_no_filter_changes_is_the_same_object():
    assert run([{"drop_properties": {"properties": ["not-there"]}}], EVENT) is EVENT


def test_no_filters_cost_nothing():
    assert compile_filters([]) is None
    assert compile_filters(filters({"drop": True, "enabled": False})) is None


def test_deterministic_sampling_keeps_or_drops_all_events_of_one_value():
    apply = compile_filters(filters({"sample": {"percent": 50, "path": "userId"}}))
    kept_users = set()
    for user in range(200):
        fates = {apply({"type": "track", "messageId": str(i), "userId": f"u{user}"}) is not None for i in range(5)}
        assert len(fates) == 1, f"user u{user} was both kept and dropped"
        if fates.pop():
            kept_users.add(user)
    assert 0 < len(kept_users) < 200  # some kept, some dropped: the percentage applies per user


def test_deterministic_sampling_is_stable_across_compilations():
    first = compile_filters(filters({"sample": {"percent": 30, "path": "userId"}}))
    second = compile_filters(filters({"sample": {"percent": 30, "path": "userId"}}))
    events = [{"type": "track", "userId": f"u{i}"} for i in range(100)]
    assert [first(e) is None for e in events] == [second(e) is None for e in events]


def test_a_higher_percentage_keeps_a_superset():
    low = compile_filters(filters({"sample": {"percent": 20, "path": "userId"}}))
    high = compile_filters(filters({"sample": {"percent": 60, "path": "userId"}}))
    events = [{"type": "track", "userId": f"u{i}"} for i in range(300)]
    kept_low = {e["userId"] for e in events if low(e) is not None}
    kept_high = {e["userId"] for e in events if high(e) is not None}
    assert kept_low < kept_high


def test_problems_are_all_reported_with_their_paths():
    with pytest.raises(SettingsError) as caught:
        compile_filters(filters(
            {"if": 'event == "A"', "drop": True},
            {"if": 'type = "track"'},
            {"drop_properties": {"": ["messageId"], "properties..x": ["a"]}},
            {"sample": {"percent": 10, "path": "a..b"}},
        ))
    problems = {(p.path, p.column is not None) for p in caught.value.problems}
    assert problems == {
        (("filters", 0, "if"), True),
        (("filters", 1), False),
        (("filters", 2, "drop_properties", ""), False),
        (("filters", 2, "drop_properties", "properties..x"), False),
        (("filters", 3, "sample", "path"), False),
    }
    fql = next(p for p in caught.value.problems if p.path == ("filters", 0, "if"))
    assert fql.column == 7 and "=" in fql.message


def test_percent_is_bounded():
    with pytest.raises(msgspec.ValidationError):
        filters({"sample": {"percent": 101}})


def test_compiled_filters_are_kept_on_the_config():
    from collector.destinations.base import DestinationConfig

    class Cfg(DestinationConfig, tag="cfg", kw_only=True):
        pass

    config = msgspec.convert({"type": "cfg", "filters": [{"drop": True}]}, Cfg)
    assert compiled_filters(config) is compiled_filters(config)
    assert compiled_filters(config)({"type": "track"}) is None
