"""collector.filters.plan: planned and unplanned events, each call type, drop_unplanned_properties."""

from __future__ import annotations

from collector.filters.config import TrackingPlanConfig
from collector.filters.plan import UNPLANNED, VIOLATION, TrackingPlan

ORDER = {"type": "object", "required": ["order_id"],
         "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}}}


def plan(**settings: object) -> TrackingPlan:
    return TrackingPlan("shop", TrackingPlanConfig(**{"events": {"Order Completed": ORDER, "Signed Up": None},
                                                      **settings}))


def track(name: str = "Order Completed", **properties: object) -> dict:
    return {"type": "track", "event": name, "userId": "u1", "properties": properties}


def test_a_valid_planned_event_passes():
    assert plan().check(track(order_id="o1", total=3), "track") is None


def test_a_planned_event_without_schema_takes_any_properties():
    assert plan().check(track("Signed Up", anything=[1, 2]), "track") is None


def test_a_violation_is_judged_by_the_violations_setting():
    for disposition in ("allow", "flag", "block"):
        verdict = plan(violations=disposition).check(track(order_id=1), "track")
        assert verdict is not None
        assert (verdict.disposition, verdict.reason) == (disposition, VIOLATION)
        assert verdict.violations == [{"type": "Datatype-Mismatch", "message": "properties.order_id must be string",
                                       "path": "properties.order_id"}]


def test_missing_properties_object_is_validated_as_empty_and_not_added():
    event = {"type": "track", "event": "Order Completed", "userId": "u1"}
    verdict = plan().check(event, "track")
    assert verdict is not None and verdict.violations[0]["path"] == "properties.order_id"
    assert "properties" not in event


def test_an_unplanned_event_is_judged_by_the_unplanned_setting():
    for disposition in ("allow", "flag", "block"):
        verdict = plan(unplanned_events=disposition).check(track("Order Complete"), "track")
        assert verdict is not None
        assert (verdict.disposition, verdict.reason) == (disposition, UNPLANNED)
        assert verdict.violations == [{"type": "Unplanned-Event", "path": "event",
                                       "message": "event 'Order Complete' is not in tracking plan 'shop'"}]


def test_event_names_match_exactly():
    assert plan().check(track("order completed", order_id="o1"), "track").reason == UNPLANNED


def test_defaults_are_permissive_like_segment():
    settings = TrackingPlanConfig()
    assert (settings.unplanned_events, settings.violations, settings.drop_unplanned_properties) == ("allow", "flag", False)


def test_drop_unplanned_properties_removes_undeclared_top_level_keys_before_validating():
    strict = dict(ORDER, additionalProperties=False)
    shop = TrackingPlan("shop", TrackingPlanConfig(events={"Order Completed": strict, "Signed Up": None},
                                                   drop_unplanned_properties=True))
    event = track(order_id="o1", total=2, coupon="X", email="ann@example.com")
    assert shop.check(event, "track") is None
    assert event["properties"] == {"order_id": "o1", "total": 2}
    # An event planned without schema declares nothing, so nothing is dropped from it.
    signed_up = track("Signed Up", plan="pro")
    assert shop.check(signed_up, "track") is None and signed_up["properties"] == {"plan": "pro"}


def test_without_drop_unplanned_properties_extra_keys_stay():
    event = track(order_id="o1", coupon="X")
    assert plan().check(event, "track") is None
    assert event["properties"]["coupon"] == "X"


def test_identify_and_group_check_traits_page_and_screen_properties():
    email = {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}}
    path = {"type": "object", "required": ["path"]}
    shop = plan(identify=email, group={"required": ["plan"]}, page=path, screen={"required": ["name"]})
    assert shop.check({"type": "identify", "traits": {"email": "ann@example.com"}}, "identify") is None
    assert shop.check({"type": "identify", "traits": {"email": "nope"}}, "identify").violations[0]["path"] == "traits.email"
    assert shop.check({"type": "group", "traits": {}}, "group").violations[0]["path"] == "traits.plan"
    assert shop.check({"type": "page", "properties": {"path": "/"}}, "page") is None
    assert shop.check({"type": "page", "traits": {"path": "/"}}, "page").violations[0]["path"] == "properties.path"
    assert shop.check({"type": "screen", "properties": {}}, "screen").violations[0]["path"] == "properties.name"


def test_calls_without_a_schema_and_alias_are_not_checked():
    assert plan().check({"type": "identify", "traits": {"x": 1}}, "identify") is None
    assert plan().check({"type": "alias", "previousId": "a", "userId": "b"}, "alias") is None
