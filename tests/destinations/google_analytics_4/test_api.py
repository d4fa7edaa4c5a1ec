"""The Measurement Protocol against the GA4 double, in process: requests, limits, per-event
outcomes and GA4's answers."""

from __future__ import annotations

import json

import pytest

from collector.destinations.actions.context import DestinationPaused
from tests.destinations.fakes import client_session, envelopes
from tests.vendors.ga4 import GA4Double

from .support import MEASUREMENT_ID, NOW, SECRET, STAMP, build, track


@pytest.fixture
async def double():
    async with GA4Double(api_secret=SECRET, measurement_id=MEASUREMENT_ID, now=lambda: NOW) as d:
        yield d


@pytest.fixture
async def http():
    async with client_session() as (session, started):
        session.started = started
        yield session


def kinds(outcome, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


def played(n: int, anonymous_id: str = "anon-1", **fields) -> dict:
    return track("Video Played", {"n": n}, anonymousId=anonymous_id, messageId=f"m{n}", **fields)


def with_n() -> dict:
    return {"mappings": [{"name": "Custom Event", "fields": {"params": {"n": {"@path": "$.properties.n"}}}}]}


def numbers(call) -> list[int]:
    return [e["params"]["n"] for e in call.json["events"]]


async def test_the_request(double, http):
    outcome = await build(double.url, http).send(envelopes([played(1)]))
    assert outcome.kind == "ok" and double.invalid == []
    (call,) = double.requests
    assert (call.method, call.path, call.query) == (
        "POST", "/mp/collect", {"measurement_id": MEASUREMENT_ID, "api_secret": SECRET})
    assert call.headers["Content-Type"] == "application/json"
    assert call.json == {"client_id": "anon-1", "user_id": "user-1", "events": [
        {"name": "Video_Played", "params": {"engagement_time_msec": 1}, "timestamp_micros": int((NOW - 60) * 1e6)}]}
    assert STAMP.endswith("11:59:00.000Z")


async def test_one_clients_events_travel_together_25_a_request(double, http):
    events = [played(i) for i in range(30)] + [played(100 + i, "anon-2") for i in range(3)]
    outcome = await build(double.url, http, **with_n()).send(envelopes(events))
    assert outcome.kind == "ok" and double.invalid == []
    by_client: dict[str, list[list[int]]] = {}
    for call in double.requests:
        by_client.setdefault(call.json["client_id"], []).append(numbers(call))
    assert by_client == {"anon-1": [list(range(25)), list(range(25, 30))], "anon-2": [[100, 101, 102]]}
    assert len(double.accepted) == 33


async def test_events_of_one_client_but_different_users_go_apart(double, http):
    events = [played(1, userId="u1"), played(2, userId="u2"), played(3, userId="u1")]
    assert (await build(double.url, http, **with_n()).send(envelopes(events))).kind == "ok"
    assert sorted((c.json["user_id"], numbers(c)) for c in double.requests) == [("u1", [1, 3]), ("u2", [2])]


async def test_an_event_ga4_would_drop_is_refused_alone_with_its_reason(double, http):
    events = [played(1), track("session start", anonymousId="anon-1"), played(3),
              played(4, timestamp="2026-02-01T00:00:00Z")]
    outcome = await build(double.url, http, **with_n()).send(envelopes(events))
    assert kinds(outcome, 4) == ["ok", "reject", "ok", "reject"]
    assert outcome.per_event[1].reason == "custom_event (Custom Event): the event name 'session_start' is reserved by GA4"
    assert "more than 72 hours old" in outcome.per_event[3].reason
    assert double.invalid == [] and [numbers(c) for c in double.requests] == [[1, 3]]


async def test_a_body_over_130_kb_is_split_and_an_event_too_large_alone_is_refused(double, http):
    product = {f"{key}": key[0] * 100 for key in ("product_id", "name", "brand", "category", "variant",
                                                   "coupon", "affiliation")}
    big = [{**product, "position": i} for i in range(100)]  # about 80 kB as GA4 items
    events = [track("Cart Viewed", {"products": big}, messageId=f"m{i}") for i in range(3)]
    events.append(track("Cart Viewed", {"products": big * 2}, messageId="too-large"))
    outcome = await build(double.url, http).send(envelopes(events))
    assert kinds(outcome, 4) == ["ok", "ok", "ok", "reject"]
    assert "GA4 takes less than 130000" in outcome.per_event[3].reason
    assert double.invalid == [] and len(double.accepted) == 3
    assert all(len(c.decoded) < 130_000 for c in double.requests) and len(double.requests) >= 2


async def test_a_5xx_is_retried(double, http):
    double.fail_next(503, body="backend unavailable")
    outcome = await build(double.url, http).send(envelopes([played(1), played(2)]))
    assert outcome.kind == "retry" and "HTTP 503: backend unavailable" in outcome.reason
    assert double.accepted == []


async def test_a_429_with_retry_after_pauses_the_destination(double, http):
    destination = build(double.url, http)
    double.fail_next(429, headers={"Retry-After": "7"})
    outcome = await destination.send(envelopes([played(1)]))
    assert (outcome.kind, outcome.retry_after) == ("retry", 7.0) and "HTTP 429" in outcome.reason
    again = await destination.send(envelopes([played(2)]))
    assert again.kind == "retry" and "paused by the vendor" in again.reason and 6 < again.retry_after <= 7
    assert len(double.requests) == 1  # nothing sent while paused


async def test_the_api_secret_never_shows_in_a_reason(double, http):
    double.fail_next(500, body=f"failed: /mp/collect?api_secret={SECRET}")
    outcome = await build(double.url, http).send(envelopes([played(1)]))
    assert outcome.kind == "retry" and SECRET not in outcome.reason and "failed: /mp/collect" in outcome.reason


async def test_an_app_stream_sends_firebase_app_id_unencoded_and_app_instance_id():
    app_id = "1:1234567890:android:321abcdef"
    async with GA4Double(api_secret=SECRET, firebase_app_id=app_id, now=lambda: NOW) as double, \
            client_session() as (http, started):
        mapping = {"name": "Custom Event", "fields": {"app_instance_id": {"@path": "$.context.device.id"}}}
        destination = build(double.url, http, measurement_id=None, firebase_app_id=app_id, mappings=[mapping])
        event = track("Level Up", context={"device": {"id": "e" * 32}})
        assert (await destination.send(envelopes([event]))).kind == "ok"
        assert double.invalid == []
        assert double.accepted[0].app_instance_id == "e" * 32 and double.accepted[0].firebase_app_id == app_id
        assert f"?firebase_app_id={app_id}&api_secret={SECRET}" in started[0]


async def test_debug_validation_refuses_what_googles_validator_finds_and_sends_the_rest(http):
    # A validator stricter than the documented limits (5 custom item params, not 10): only it can
    # find the fault, which pins it on events[1].
    async with GA4Double(api_secret=SECRET, measurement_id=MEASUREMENT_ID, max_custom_item_params=5,
                         now=lambda: NOW) as double:
        mapping = {"name": "Cart Viewed", "fields": {"items": {"@arrayPath": ["$.properties.products", {
            "item_id": {"@path": "$.sku"}, "c1": {"@path": "$.a"}, "c2": {"@path": "$.b"}, "c3": {"@path": "$.c"},
            "c4": {"@path": "$.d"}, "c5": {"@path": "$.e"}, "c6": {"@path": "$.f"}}]}}}
        few = {"sku": "s1", "a": 1}
        many = {"sku": "s2", "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}
        events = [track("Cart Viewed", {"products": [p]}, messageId=f"m{i}") for i, p in enumerate([few, many, few])]
        destination = build(double.url, http, debug_validation=True, mappings=[mapping])
        outcome = await destination.send(envelopes(events))
        assert kinds(outcome, 3) == ["ok", "reject", "ok"]
        assert outcome.per_event[1].reason == (
            "view_cart (Cart Viewed): GA4's validator: events[1].params.items[0]: more than 5 custom item params "
            "(EXCEEDED_MAX_ENTITIES)")
        assert [c.path for c in double.requests] == ["/debug/mp/collect", "/mp/collect"]
        assert [e.params["items"][0]["item_id"] for e in double.accepted] == ["s1", "s1"]
        assert double.invalid == []


async def test_debug_validation_asks_event_by_event_about_a_fault_it_does_not_pin(http):
    async with GA4Double(api_secret=SECRET, measurement_id=MEASUREMENT_ID, now=lambda: NOW) as double:
        for messages in ([{"fieldPath": "", "description": "something", "validationCode": "X"}], [],
                         [{"fieldPath": "events", "description": "bad", "validationCode": "Y"}]):
            double.fail_next(200, {"validationMessages": messages}, path="/debug/mp/collect")
        outcome = await build(double.url, http, debug_validation=True, **with_n()).send(
            envelopes([played(1), played(2)]))
        assert kinds(outcome, 2) == ["ok", "reject"]
        assert outcome.per_event[1].reason.endswith("GA4's validator: events: bad (Y)")
        assert [c.path for c in double.requests] == ["/debug/mp/collect"] * 3 + ["/mp/collect"]
        assert [numbers(c) for c in double.requests] == [[1, 2], [1], [2], [1]]


def test_the_request_body_is_compact_json():
    from collector.destinations.google_analytics_4.api import _requests

    (request,) = _requests({"client_id": "c"}, [(0, {"name": "x", "params": {}})], [None])
    assert json.loads(request.body) == {"client_id": "c", "events": [{"name": "x", "params": {}}]}
    assert b" " not in request.body


async def test_a_paused_destination_raises_before_sending(double, http):
    destination = build(double.url, http)
    destination.pause.extend(5)
    with pytest.raises(DestinationPaused):
        await destination.wait_turn()
