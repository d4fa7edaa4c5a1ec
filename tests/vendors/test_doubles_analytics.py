"""The analytics doubles refuse what each vendor documents it refuses, answer as it answers, and
ingest (``accepted``) exactly what the vendor would. Sources: docs/vendors/analytics-ads.md §1-3."""

from __future__ import annotations

import base64
import gzip
import json
import time
import urllib.request
from typing import Any

import aiohttp
import pytest

from tests.vendors.base import ThreadedDouble
from tests.vendors.ga4 import GA4Double

NOW = 1_718_000_000.0  # the fact sheet's examples are dated around this instant


def clock() -> float:
    return NOW


async def post(url: str, *, query: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
    """POST and return (status, JSON body or text or None, headers)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(url, params=query, **kwargs) as response:
            text = await response.text()
            try:
                body: Any = json.loads(text) if text else None
            except ValueError:
                body = text
            return response.status, body, dict(response.headers)


# ---------------------------------------------------------------------------------------------- base


async def test_scripted_failures_come_first_and_count_down():
    async with GA4Double(now=clock) as double:
        double.fail_next(429, {"error": "slow down"}, {"Retry-After": "7"}, times=2)
        url = f"{double.url}/mp/collect"
        query = {"api_secret": "ga4-secret", "measurement_id": "G-TEST0001"}
        answers = [await post(url, query=query, json=ga4_body()) for _ in range(3)]
    assert [status for status, _, _ in answers] == [429, 429, 204]
    assert answers[0][1] == {"error": "slow down"} and answers[0][2]["Retry-After"] == "7"
    assert [call.scripted for call in double.requests] == [True, True, False]
    assert len(double.accepted) == 1  # only the unscripted request was ingested


async def test_a_scripted_failure_for_one_path_leaves_the_others_alone():
    async with GA4Double(now=clock) as double:
        double.fail_next(500, path="/mp/collect")
        query = {"api_secret": "ga4-secret", "measurement_id": "G-TEST0001"}
        debug_status, _, _ = await post(f"{double.url}/debug/mp/collect", query=query, json=ga4_body())
        collect_status, _, _ = await post(f"{double.url}/mp/collect", query=query, json=ga4_body())
    assert (debug_status, collect_status) == (200, 500)


async def test_unknown_paths_are_recorded_and_answered_404():
    async with GA4Double(now=clock) as double:
        status, _, _ = await post(f"{double.url}/collect", json={})
    assert status == 404 and double.requests[0].path == "/collect"


def test_threaded_double_serves_a_synchronous_sender():
    with ThreadedDouble(GA4Double(now=clock)) as double:
        url = f"{double.url}/mp/collect?api_secret=ga4-secret&measurement_id=G-TEST0001"
        request = urllib.request.Request(url, data=json.dumps(ga4_body()).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request) as response:
            assert response.status == 204
        events = double.wait_for_accepted(1, timeout=5)
    assert [event.name for event in events] == ["purchase"]


def test_wait_for_names_what_it_waited_for_on_timeout():
    with ThreadedDouble(GA4Double(now=clock)) as double:
        with pytest.raises(AssertionError, match="3 accepted"):
            double.wait_for_accepted(3, timeout=0.1)


# ---------------------------------------------------------------------------------------------- GA4

GA4_QUERY = {"api_secret": "ga4-secret", "measurement_id": "G-TEST0001"}


def ga4_body(**changes: Any) -> dict[str, Any]:
    """The fact sheet's example request (§1), with a timestamp inside the 72-hour window."""
    body: dict[str, Any] = {
        "client_id": "123.456",
        "user_id": "u1",
        "timestamp_micros": int((NOW - 3600) * 1_000_000),
        "user_properties": {"plan": {"value": "pro"}},
        "consent": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
        "events": [
            {
                "name": "purchase",
                "params": {
                    "transaction_id": "o1",
                    "currency": "USD",
                    "value": 30,
                    "engagement_time_msec": 1,
                    "session_id": "1718000000",
                    "items": [{"item_id": "sku1", "price": 15, "quantity": 2}],
                },
            }
        ],
    }
    body.update(changes)
    return body


def ga4_event(name: str = "custom_event", **params: Any) -> dict[str, Any]:
    return {"name": name, "params": params}


async def ga4_collect(double: GA4Double, body: Any, query: dict[str, str] = GA4_QUERY, **kwargs: Any) -> int:
    if "data" not in kwargs:
        kwargs["json"] = body
    status, answer, _ = await post(f"{double.url}/mp/collect", query=query, **kwargs)
    assert answer is None  # 204, no body, whatever was sent
    return status


async def test_ga4_ingests_the_documented_example():
    async with GA4Double(now=clock) as double:
        assert await ga4_collect(double, ga4_body()) == 204
    assert double.invalid == []
    [event] = double.accepted
    assert (event.name, event.client_id, event.user_id, event.measurement_id) == ("purchase", "123.456", "u1", "G-TEST0001")
    assert event.params["items"] == [{"item_id": "sku1", "price": 15, "quantity": 2}]
    assert event.user_properties == {"plan": {"value": "pro"}}


async def test_ga4_ingests_an_app_stream_request_with_app_instance_id():
    async with GA4Double(api_secret="s", firebase_app_id="1:123:android:abc", now=clock) as double:
        body = ga4_body()
        del body["client_id"]
        body["app_instance_id"] = "cbd7f8d2c1a44e7e9f2f3c5a2b1d0e9f"
        # The app id holds ":" which senders put into the URL unencoded.
        url = f"{double.url}/mp/collect?api_secret=s&firebase_app_id=1:123:android:abc"
        status, _, _ = await post(url, json=body)
    assert status == 204 and double.invalid == []
    assert double.accepted[0].firebase_app_id == "1:123:android:abc"


@pytest.mark.parametrize(
    "query, field_path",
    [
        ({"api_secret": "wrong", "measurement_id": "G-TEST0001"}, "api_secret"),
        ({"measurement_id": "G-TEST0001"}, "api_secret"),
        ({"api_secret": "ga4-secret"}, "measurement_id"),
        ({"api_secret": "ga4-secret", "measurement_id": "G-OTHER"}, "measurement_id"),
    ],
)
async def test_ga4_answers_2xx_to_bad_credentials_but_ingests_nothing(query, field_path):
    async with GA4Double(now=clock) as double:
        assert await ga4_collect(double, ga4_body(), query=query) == 204
    assert double.accepted == []
    assert [problem.field_path for problem in double.invalid] == [field_path]


def _too_many_params() -> dict[str, Any]:
    return ga4_body(events=[ga4_event(**{f"p{i}": i for i in range(26)})])


GA4_BAD_BODIES = [
    ("no client_id", lambda: {k: v for k, v in ga4_body().items() if k != "client_id"}, "client_id", "VALUE_REQUIRED"),
    ("26 events", lambda: ga4_body(events=[ga4_event()] * 26), "events", "EXCEEDED_MAX_ENTITIES"),
    ("no events", lambda: ga4_body(events=[]), "events", "VALUE_REQUIRED"),
    ("name starts with a digit", lambda: ga4_body(events=[ga4_event("1st_event")]), "events[0].name", "NAME_INVALID"),
    ("name with a space", lambda: ga4_body(events=[ga4_event("Order Completed")]), "events[0].name", "NAME_INVALID"),
    ("41-character name", lambda: ga4_body(events=[ga4_event("e" * 41)]), "events[0].name", "NAME_INVALID"),
    ("reserved name", lambda: ga4_body(events=[ga4_event("session_start")]), "events[0].name", "NAME_RESERVED"),
    ("reserved prefix", lambda: ga4_body(events=[ga4_event("google_thing")]), "events[0].name", "NAME_RESERVED"),
    ("bad param name", lambda: ga4_body(events=[ga4_event(**{"bad-name": 1})]), "events[0].params.bad-name", "NAME_INVALID"),
    ("reserved param prefix", lambda: ga4_body(events=[ga4_event(firebase_x=1)]), "events[0].params.firebase_x", "NAME_RESERVED"),
    ("101-character value", lambda: ga4_body(events=[ga4_event(note="x" * 101)]), "events[0].params.note", "VALUE_OUT_OF_BOUNDS"),
    ("null value", lambda: ga4_body(events=[ga4_event(note=None)]), "events[0].params.note", "VALUE_INVALID"),
    ("object value", lambda: ga4_body(events=[ga4_event(note={"a": 1})]), "events[0].params.note", "VALUE_INVALID"),
    ("array value", lambda: ga4_body(events=[ga4_event(tags=["a"])]), "events[0].params.tags", "VALUE_INVALID"),
    ("26 params", _too_many_params, "events[0].params", "EXCEEDED_MAX_ENTITIES"),
    ("item without id or name", lambda: ga4_body(events=[ga4_event("add_to_cart", items=[{"price": 1}])]), "events[0].params.items[0]", "VALUE_REQUIRED"),
    ("user_id of 257", lambda: ga4_body(user_id="u" * 257), "user_id", "VALUE_OUT_OF_BOUNDS"),
    ("73 hours old", lambda: ga4_body(timestamp_micros=int((NOW - 73 * 3600) * 1e6)), "timestamp_micros", "VALUE_OUT_OF_BOUNDS"),
    ("in the future", lambda: ga4_body(timestamp_micros=int((NOW + 60) * 1e6)), "timestamp_micros", "VALUE_OUT_OF_BOUNDS"),
    ("user property name of 25", lambda: ga4_body(user_properties={"p" * 25: {"value": "x"}}), f"user_properties.{'p' * 25}", "NAME_INVALID"),
    ("user property value of 37", lambda: ga4_body(user_properties={"plan": {"value": "x" * 37}}), "user_properties.plan.value", "VALUE_OUT_OF_BOUNDS"),
    ("reserved user property", lambda: ga4_body(user_properties={"first_open_time": {"value": "1"}}), "user_properties.first_open_time", "NAME_RESERVED"),
    ("bare user property", lambda: ga4_body(user_properties={"plan": "pro"}), "user_properties.plan", "VALUE_INVALID"),
    ("26 user properties", lambda: ga4_body(user_properties={f"p{i}": {"value": i} for i in range(26)}), "user_properties", "EXCEEDED_MAX_ENTITIES"),
]


@pytest.mark.parametrize("case, make_body, field_path, code", GA4_BAD_BODIES, ids=[c[0] for c in GA4_BAD_BODIES])
async def test_ga4_refuses_each_documented_limit_silently(case, make_body, field_path, code):
    async with GA4Double(now=clock) as double:
        assert await ga4_collect(double, make_body()) == 204
        status, debug, _ = await post(f"{double.url}/debug/mp/collect", query=GA4_QUERY, json=make_body())
    assert double.accepted == []
    assert [(p.field_path, p.code) for p in double.invalid] == [(field_path, code)]
    assert status == 200
    assert [(m["fieldPath"], m["validationCode"]) for m in debug["validationMessages"]] == [(field_path, code)]


async def test_ga4_refuses_a_body_of_130_kb():
    async with GA4Double(now=clock) as double:
        item = {key: "x" * 100 for key in ("item_name", "item_brand", "item_category", "item_variant")}
        body = ga4_body(events=[ga4_event("view_item_list", items=[item] * 200)] * 2)
        assert len(json.dumps(body)) >= 130_000
        await ga4_collect(double, body)
    assert double.accepted == []
    assert [(p.field_path, p.code) for p in double.invalid] == [("", "VALUE_OUT_OF_BOUNDS")]


async def test_ga4_refuses_a_body_that_is_not_json():
    async with GA4Double(now=clock) as double:
        await ga4_collect(double, None, data=b"client_id=1", headers={"Content-Type": "text/plain"})
    assert double.accepted == [] and [p.code for p in double.invalid] == ["VALUE_INVALID"]


async def test_ga4_lets_page_params_be_longer_than_100_characters():
    url = "https://example.com/" + "p" * 900
    async with GA4Double(now=clock) as double:
        await ga4_collect(double, ga4_body(events=[ga4_event("page_view", page_location=url, page_title="t" * 300)]))
        await ga4_collect(double, ga4_body(events=[ga4_event("page_view", page_title="t" * 301)]))
    assert [event.params["page_location"] for event in double.accepted] == [url]
    assert [p.field_path for p in double.invalid] == ["events[0].params.page_title"]


async def test_ga4_drops_a_whole_request_when_one_event_is_bad():
    async with GA4Double(now=clock) as double:
        await ga4_collect(double, ga4_body(events=[ga4_event("good_one"), ga4_event("bad one")]))
    assert double.accepted == [] and len(double.invalid) == 1


async def test_ga4_ingests_duplicates_twice_because_it_does_not_deduplicate():
    async with GA4Double(now=clock) as double:
        await ga4_collect(double, ga4_body())
        await ga4_collect(double, ga4_body())
    assert [event.params["transaction_id"] for event in double.accepted] == ["o1", "o1"]


async def test_ga4_debug_endpoint_answers_empty_messages_for_a_good_body_and_ingests_nothing():
    async with GA4Double(now=clock) as double:
        status, answer, _ = await post(f"{double.url}/debug/mp/collect", query=GA4_QUERY, json=ga4_body())
    assert (status, answer) == (200, {"validationMessages": []})
    assert double.accepted == [] and double.invalid == []
