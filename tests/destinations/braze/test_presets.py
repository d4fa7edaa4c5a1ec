"""Segment spec events in, Braze /users/track objects out, through the presets and the double."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from collector.destinations.braze import BrazeSettings
from tests.destinations.fakes import envelopes, started

from .support import TIME, destination, identify, track


async def send(double: Any, http: Any, tmp_path: Any, events: list[dict], **settings: Any) -> Any:
    async with started(destination(double, http, tmp_path, **settings)) as running:
        return await running.send(envelopes(events))


def test_endpoint_is_required():
    with pytest.raises(msgspec.ValidationError, match="endpoint is required for braze"):
        msgspec.convert({"type": "braze", "api_key": "k"}, BrazeSettings)


async def test_identify_sets_standard_and_custom_attributes(double, http, tmp_path):
    event = identify(firstName="Zoë", lastName="Müller", email="z@example.com", phone="+4915112345678",
                     gender="female", birthday="1990-04-01T00:00:00Z", avatar="https://img.example/z.png",
                     address={"city": "Köln", "country": "DE"}, plan="pro", logins=12)
    outcome = await send(double, http, tmp_path, [event])
    assert outcome.ok, outcome
    assert double.objects("attributes") == [{
        "external_id": "u1", "_update_existing_only": False, "first_name": "Zoë", "last_name": "Müller",
        "email": "z@example.com", "phone": "+4915112345678", "gender": "F", "dob": "1990-04-01",
        "image_url": "https://img.example/z.png", "home_city": "Köln", "country": "DE", "plan": "pro", "logins": 12}]


async def test_anonymous_users_are_identified_by_their_alias(double, http, tmp_path):
    outcome = await send(double, http, tmp_path, [identify(None, "anon-9", plan="free"), track(1, user=None)])
    assert outcome.ok, outcome
    alias = {"alias_name": "anon-9", "alias_label": "anonymous_id"}
    assert double.profiles == {"anonymous_id:anon-9": {"_update_existing_only": False, "plan": "free"}}
    assert double.objects("events")[0]["user_alias"] == {"alias_name": "anon-1", "alias_label": "anonymous_id"}
    assert "external_id" not in double.objects("attributes")[0] and double.objects("attributes")[0]["user_alias"] == alias


async def test_track_becomes_an_event_with_its_own_time_and_app_id(double, http, tmp_path):
    outcome = await send(double, http, tmp_path, [track(1, plan="pro")], app_id="app-123")
    assert outcome.ok, outcome
    assert double.objects("events") == [{"external_id": "u1", "_update_existing_only": False, "name": "Event 1",
                                         "time": TIME, "properties": {"n": 1, "plan": "pro"}, "app_id": "app-123"}]


async def test_order_completed_becomes_one_purchase_per_product(double, http, tmp_path):
    order = track(1, event="Order Completed", order_id="o1", currency="eur",
                  products=[{"product_id": "p1", "price": 19, "quantity": 1, "name": "Monopoly"},
                            {"sku": "sku-2", "price": 3.25}])
    no_currency = track(2, event="Order Completed", products=[{"product_id": "p3", "price": 5}])
    outcome = await send(double, http, tmp_path, [order, no_currency])
    assert outcome.ok, outcome
    assert double.objects("events") == []
    got = [(p["product_id"], p["price"], p["quantity"], p["currency"], p["properties"]) for p in double.objects("purchases")]
    assert got == [("p1", 19, 1, "EUR", {"n": 1, "order_id": "o1", "currency": "eur"}),
                   ("sku-2", 3.25, 1, "EUR", {"n": 1, "order_id": "o1", "currency": "eur"}),
                   ("p3", 5, 1, "USD", {"n": 2})]


async def test_a_product_without_id_rejects_its_order_alone(double, http, tmp_path):
    bad = track(1, event="Order Completed", products=[{"price": 1}])
    good = track(2, event="Order Completed", products=[{"product_id": "p", "price": 1}])
    outcome = await send(double, http, tmp_path, [bad, good])
    assert [o.kind for o in outcome.per_event] == ["reject", "ok"]
    assert "products[0] has no product_id or sku" in outcome.per_event[0].reason
    assert len(double.objects("purchases")) == 1


async def test_audiences_set_a_boolean_custom_attribute(double, http, tmp_path):
    entered = track(1, event="Audience Entered", audience_key="high_value")
    exited = track(2, user="u2", event="Audience Exited", audience_key="high_value")
    computed = identify("u3", vip_users=True)
    computed["context"] = {"personas": {"computation_class": "audience", "computation_key": "vip_users"}}
    outcome = await send(double, http, tmp_path, [entered, exited, computed])
    assert outcome.ok, outcome
    assert double.objects("events") == []
    assert double.objects("attributes") == [
        {"external_id": "u1", "_update_existing_only": False, "high_value": True},
        {"external_id": "u2", "_update_existing_only": False, "high_value": False},
        {"external_id": "u3", "_update_existing_only": False, "vip_users": True},
    ]


async def test_a_page_becomes_a_viewed_page_event(double, http, tmp_path):
    page = {"type": "page", "name": "Pricing", "userId": "u1", "messageId": "m", "timestamp": TIME,
            "properties": {"url": "https://x.example/pricing"}}
    outcome = await send(double, http, tmp_path, [page])
    assert outcome.ok, outcome
    assert double.objects("events")[0]["name"] == "Viewed Pricing Page"
    assert double.objects("events")[0]["properties"] == {"name": "Pricing", "url": "https://x.example/pricing"}


async def test_an_event_without_any_identifier_is_rejected_before_sending(double, http, tmp_path):
    event = track(1, user=None)
    event["anonymousId"] = None
    outcome = await send(double, http, tmp_path, [event])
    assert outcome.kind == "reject" and "no external_id, user_alias" in outcome.reason
    assert double.requests == []


async def test_the_documented_custom_mapping_sets_an_attribute_from_a_track(double, http, tmp_path):
    example = yaml.safe_load((Path(__file__).parents[3] / "config.example.yaml").read_text())  # as written there
    (block,) = [d for d in example["destinations"].values() if d.get("type") == "braze"]
    changed = track(1, event="Plan Changed", plan="enterprise")
    outcome = await send(double, http, tmp_path, [changed], mappings=block["mappings"])
    assert outcome.ok, outcome
    assert double.objects("attributes") == [{"external_id": "u1", "_update_existing_only": False, "plan": "enterprise"}]
    assert [e["name"] for e in double.objects("events")] == ["Plan Changed"]
