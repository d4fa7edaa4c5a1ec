"""The analytics doubles refuse what each vendor documents it refuses, answer as it answers, and
ingest (``accepted``) exactly what the vendor would. Sources: docs/vendors/analytics-ads.md §1-3."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.request
from typing import Any

import aiohttp
import pytest

from tests.vendors.amplitude import AmplitudeDouble
from tests.vendors.base import ThreadedDouble
from tests.vendors.ga4 import GA4Double
from tests.vendors.mixpanel import MixpanelDouble

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
    assert (event.name, event.client_id, event.user_id, event.measurement_id) == (
        "purchase",
        "123.456",
        "u1",
        "G-TEST0001",
    )
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
    (
        "bad param name",
        lambda: ga4_body(events=[ga4_event(**{"bad-name": 1})]),
        "events[0].params.bad-name",
        "NAME_INVALID",
    ),
    (
        "reserved param prefix",
        lambda: ga4_body(events=[ga4_event(firebase_x=1)]),
        "events[0].params.firebase_x",
        "NAME_RESERVED",
    ),
    (
        "101-character value",
        lambda: ga4_body(events=[ga4_event(note="x" * 101)]),
        "events[0].params.note",
        "VALUE_OUT_OF_BOUNDS",
    ),
    ("null value", lambda: ga4_body(events=[ga4_event(note=None)]), "events[0].params.note", "VALUE_INVALID"),
    ("object value", lambda: ga4_body(events=[ga4_event(note={"a": 1})]), "events[0].params.note", "VALUE_INVALID"),
    ("array value", lambda: ga4_body(events=[ga4_event(tags=["a"])]), "events[0].params.tags", "VALUE_INVALID"),
    ("26 params", _too_many_params, "events[0].params", "EXCEEDED_MAX_ENTITIES"),
    (
        "item without id or name",
        lambda: ga4_body(events=[ga4_event("add_to_cart", items=[{"price": 1}])]),
        "events[0].params.items[0]",
        "VALUE_REQUIRED",
    ),
    ("user_id of 257", lambda: ga4_body(user_id="u" * 257), "user_id", "VALUE_OUT_OF_BOUNDS"),
    (
        "73 hours old",
        lambda: ga4_body(timestamp_micros=int((NOW - 73 * 3600) * 1e6)),
        "timestamp_micros",
        "VALUE_OUT_OF_BOUNDS",
    ),
    (
        "in the future",
        lambda: ga4_body(timestamp_micros=int((NOW + 60) * 1e6)),
        "timestamp_micros",
        "VALUE_OUT_OF_BOUNDS",
    ),
    (
        "user property name of 25",
        lambda: ga4_body(user_properties={"p" * 25: {"value": "x"}}),
        f"user_properties.{'p' * 25}",
        "NAME_INVALID",
    ),
    (
        "user property value of 37",
        lambda: ga4_body(user_properties={"plan": {"value": "x" * 37}}),
        "user_properties.plan.value",
        "VALUE_OUT_OF_BOUNDS",
    ),
    (
        "reserved user property",
        lambda: ga4_body(user_properties={"first_open_time": {"value": "1"}}),
        "user_properties.first_open_time",
        "NAME_RESERVED",
    ),
    ("bare user property", lambda: ga4_body(user_properties={"plan": "pro"}), "user_properties.plan", "VALUE_INVALID"),
    (
        "26 user properties",
        lambda: ga4_body(user_properties={f"p{i}": {"value": i} for i in range(26)}),
        "user_properties",
        "EXCEEDED_MAX_ENTITIES",
    ),
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


# ---------------------------------------------------------------------------------------------- Mixpanel

MP_AUTH = {"Authorization": "Basic " + base64.b64encode(b"mp-secret:").decode()}
NOW_MS = int(NOW * 1000)
DROP = object()  # a property value meaning "leave this key out"


def basic(username: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def mp_event(insert_id: str = "29fc2962-6d9c-455d-95ad-95b84f09b9e4", **changes: Any) -> dict[str, Any]:
    """An event shaped as the fact sheet's trackEvent mapping (§2) sends it."""
    properties: dict[str, Any] = {
        "time": NOW_MS - 60_000,
        "distinct_id": "user-1",
        "$device_id": "anon-1",
        "$user_id": "user-1",
        "$insert_id": insert_id,
        "plan": "pro",
    }
    properties.update(changes)
    return {"event": "Order Completed", "properties": {k: v for k, v in properties.items() if v is not DROP}}


async def mp_import(double, records: Any, *, strict: bool = True, headers: dict[str, str] = MP_AUTH, **kwargs: Any):
    query = {"strict": "1"} if strict else {}
    if "data" not in kwargs:
        kwargs["json"] = records
    return await post(f"{double.url}/import", query=query, headers=headers, **kwargs)


def mixpanel() -> MixpanelDouble:
    return MixpanelDouble(api_secret="mp-secret", project_token="mp-token", now=clock)


async def test_mixpanel_import_ingests_a_good_batch():
    events = [mp_event("a1"), mp_event("a2", time=int(NOW) - 60)]  # ms and seconds are both valid
    async with mixpanel() as double:
        status, answer, _ = await mp_import(double, events)
    assert (status, answer) == (200, {"code": 200, "num_records_imported": 2, "status": "OK"})
    assert double.accepted == events and double.imported == events and double.failed == []


async def test_mixpanel_import_takes_gzipped_ndjson():
    events = [mp_event("n1"), mp_event("n2")]
    body = gzip.compress("\n".join(json.dumps(event) for event in events).encode())
    headers = {**MP_AUTH, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    async with mixpanel() as double:
        status, answer, _ = await mp_import(double, None, headers=headers, data=body)
    assert status == 200 and answer["num_records_imported"] == 2
    assert double.accepted == events


@pytest.mark.parametrize(
    "headers",
    [{}, basic("wrong-secret"), basic("mp-secret", "x"), {"Authorization": "Bearer mp-secret"}],
    ids=["none", "wrong secret", "secret with a password", "bearer"],
)
async def test_mixpanel_import_refuses_bad_credentials_with_401(headers):
    async with mixpanel() as double:
        status, answer, _ = await mp_import(double, [mp_event()], headers=headers)
    assert status == 401 and answer["code"] == 401
    assert double.accepted == []


async def test_mixpanel_import_takes_the_project_token_or_a_service_account():
    double = MixpanelDouble(service_account=("sa.user", "sa-pass"), project_id="42", now=clock)
    async with double:
        token_status, _, _ = await mp_import(double, [mp_event("t1")], headers=basic("mp-token"))
        sa_status, _, _ = await post(
            f"{double.url}/import",
            query={"strict": "1", "project_id": "42"},
            headers=basic("sa.user", "sa-pass"),
            json=[mp_event("t2")],
        )
        no_project_status, _, _ = await mp_import(double, [mp_event("t3")], headers=basic("sa.user", "sa-pass"))
    assert (token_status, sa_status, no_project_status) == (200, 200, 401)
    assert [e["properties"]["$insert_id"] for e in double.accepted] == ["t1", "t2"]


MP_BAD_EVENTS = [
    ("no time", mp_event("b1", time=DROP), "properties.time"),
    ("time as a string", mp_event("b2", time="2024-06-10T00:00:00Z"), "properties.time"),
    ("before 1971", mp_event("b3", time=31_535_999), "properties.time"),
    ("over 1 h ahead", mp_event("b4", time=NOW_MS + 3_601_000), "properties.time"),
    ("no distinct_id", mp_event("b5", distinct_id=DROP), "properties.distinct_id"),
    ("placeholder distinct_id", mp_event("b6", distinct_id="Anonymous"), "properties.distinct_id"),
    (
        "zero-uuid distinct_id",
        mp_event("b7", distinct_id="00000000-0000-0000-0000-000000000000"),
        "properties.distinct_id",
    ),
    ("no $insert_id", mp_event(insert_id=DROP), "properties.$insert_id"),
    ("$insert_id of 37", mp_event("i" * 37), "properties.$insert_id"),
    ("$insert_id with '_'", mp_event("msg_1"), "properties.$insert_id"),
    ("no event name", {"properties": mp_event("b8")["properties"]}, "event"),
    ("no properties", {"event": "x"}, "properties"),
    ("255 properties", mp_event("b9", **{f"p{i}": i for i in range(250)}), "properties"),
    ("array of 255", mp_event("b10", tags=list(range(255))), "properties.tags"),
    ("event of 1 MB", mp_event("b11", blob="x" * 1024 * 1024), ""),
]


@pytest.mark.parametrize("case, event, field", MP_BAD_EVENTS, ids=[c[0] for c in MP_BAD_EVENTS])
async def test_mixpanel_strict_import_answers_400_naming_the_bad_event_and_ingests_the_rest(case, event, field):
    good = [mp_event("g1"), mp_event("g2")]
    async with mixpanel() as double:
        status, answer, _ = await mp_import(double, [good[0], event, good[1]])
    assert status == 400
    assert (
        answer["num_records_imported"] == 2 and answer["error"] == "some data points in the request failed validation"
    )
    [record] = answer["failed_records"]
    assert (record["index"], record["field"]) == (1, field)
    assert record["insert_id"] == (event.get("properties") or {}).get("$insert_id")
    assert double.accepted == good
    assert [(f.index, f.field) for f in double.failed] == [(1, field)]


async def test_mixpanel_import_without_strict_drops_bad_events_silently():
    bad = mp_event("b1", time=DROP)
    async with mixpanel() as double:
        status, answer, _ = await mp_import(double, [mp_event("g1"), bad], strict=False)
    assert (status, answer["num_records_imported"]) == (200, 1)
    assert double.dropped == [bad] and len(double.accepted) == 1


async def test_mixpanel_import_refuses_2001_events_with_413():
    async with mixpanel() as double:
        status, answer, _ = await mp_import(double, [mp_event(f"e{i}") for i in range(2001)])
    assert (status, answer["code"]) == (413, 413) and double.accepted == []


async def test_mixpanel_import_refuses_10_mb_uncompressed_with_413_even_gzipped():
    events = [mp_event(f"e{i}", blob="x" * 990_000) for i in range(11)]  # each event under 1 MB
    headers = {**MP_AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with mixpanel() as double:
        status, answer, _ = await mp_import(
            double, None, headers=headers, data=gzip.compress(json.dumps(events).encode())
        )
        accepted_at_10 = await mp_import(
            double, None, headers=headers, data=gzip.compress(json.dumps(events[:10]).encode())
        )
    assert (status, answer["code"]) == (413, 413)
    assert accepted_at_10[0] == 200 and len(double.accepted) == 10


async def test_mixpanel_import_refuses_a_body_that_is_not_json():
    async with mixpanel() as double:
        status, answer, _ = await mp_import(
            double, None, data=b"[{oops", headers={**MP_AUTH, "Content-Type": "application/json"}
        )
    assert (status, answer["code"]) == (400, 400) and double.accepted == []


async def test_mixpanel_deduplicates_on_event_distinct_id_time_and_insert_id():
    event = mp_event("d1")
    same_in_seconds = mp_event("d1", time=(NOW_MS - 60_000) // 1000)
    other_time = mp_event("d1", time=NOW_MS - 1000)
    async with mixpanel() as double:
        await mp_import(double, [event])
        status, answer, _ = await mp_import(double, [event, same_in_seconds, other_time])
    assert (status, answer["num_records_imported"]) == (200, 3)  # a duplicate is a success
    assert double.accepted == [event, other_time]
    assert double.duplicates == [event, same_in_seconds]


async def test_mixpanel_scripted_429_carries_the_documented_body_and_no_retry_after():
    async with mixpanel() as double:
        double.fail_next(429)
        status, answer, headers = await mp_import(double, [mp_event()])
        retry_status, _, _ = await mp_import(double, [mp_event()])
    assert status == 429 and answer["code"] == 429 and answer["error"].startswith("Project exceeded rate limits")
    assert "Retry-After" not in headers
    assert retry_status == 200 and len(double.accepted) == 1


def test_mixpanel_double_stands_for_one_regional_host():
    assert [MixpanelDouble(region=r).host for r in ("US", "EU", "IN")] == [
        "api.mixpanel.com",
        "api-eu.mixpanel.com",
        "api-in.mixpanel.com",
    ]


def mp_track_event(name: str = "Signed In", **properties: Any) -> dict[str, Any]:
    base = {"token": "mp-token", "distinct_id": "user-1", "time": int(NOW) - 60, "$insert_id": "t-1"}
    base.update(properties)
    return {"event": name, "properties": {k: v for k, v in base.items() if v is not DROP}}


async def mp_form(double, path: str, data: Any, *, verbose: bool = False, encode: bool = False):
    text = json.dumps(data)
    form = {"data": base64.b64encode(text.encode()).decode() if encode else text}
    if verbose:
        form["verbose"] = "1"
    return await post(f"{double.url}{path}", data=form)


async def test_mixpanel_track_takes_form_data_and_answers_1():
    events = [mp_track_event(), mp_track_event("Viewed Home", **{"$insert_id": "t-2"})]
    async with mixpanel() as double:
        status, answer, _ = await mp_form(double, "/track", events)
        encoded_status, encoded_answer, _ = await mp_form(
            double, "/track", mp_track_event(**{"$insert_id": "t-3"}), encode=True
        )
    assert (status, answer, encoded_status, encoded_answer) == (200, 1, 200, 1)
    assert [e["properties"]["$insert_id"] for e in double.tracked] == ["t-1", "t-2", "t-3"]


async def test_mixpanel_track_answers_0_for_a_wrong_token_and_ingests_nothing():
    async with mixpanel() as double:
        status, answer, _ = await mp_form(double, "/track", [mp_track_event(), mp_track_event(token="nope")])
        verbose_status, verbose, _ = await mp_form(double, "/track", [mp_track_event(token="nope")], verbose=True)
    assert (status, answer) == (200, 0)
    assert verbose_status == 200 and verbose["status"] == 0 and "token" in verbose["error"]
    assert double.accepted == []


async def test_mixpanel_track_silently_drops_events_older_than_5_days():
    old = mp_track_event(time=int(NOW) - 5 * 86400 - 60)
    async with mixpanel() as double:
        status, answer, _ = await mp_form(double, "/track", [old])
    assert (status, answer) == (200, 1)
    assert double.accepted == [] and double.dropped == [old]


async def test_mixpanel_track_takes_alias_and_identify_events_with_their_ids():
    alias = mp_track_event("$create_alias", distinct_id="anon-1", alias="user-1", **{"$insert_id": DROP})
    identify = mp_track_event("$identify", **{"$identified_id": "user-1", "$anon_id": "anon-1", "$insert_id": DROP})
    bad_alias = mp_track_event("$create_alias", distinct_id="anon-1", **{"$insert_id": DROP})
    async with mixpanel() as double:
        ok = await mp_form(double, "/track", [alias, identify])
        refused = await mp_form(double, "/track", [bad_alias])
    assert (ok[1], refused[1]) == (1, 0)
    assert double.aliases == [alias] and double.identifies == [identify]


async def test_mixpanel_engage_applies_profile_updates():
    update = {
        "$token": "mp-token",
        "$distinct_id": "user-1",
        "$ip": "0",
        "$set": {"$email": "a@example.com", "plan": "pro"},
    }
    async with mixpanel() as double:
        status, answer, _ = await mp_form(double, "/engage", [update])
        await mp_form(
            double,
            "/engage",
            {"$token": "mp-token", "$distinct_id": "user-1", "$set_once": {"plan": "free", "first": 1}},
        )
    assert (status, answer) == (200, 1)
    assert double.profiles == {"user-1": {"$email": "a@example.com", "plan": "pro", "first": 1}}
    assert double.profile_updates[0] == update


@pytest.mark.parametrize(
    "update",
    [
        {"$token": "nope", "$distinct_id": "user-1", "$set": {"a": 1}},
        {"$token": "mp-token", "$set": {"a": 1}},
        {"$token": "mp-token", "$distinct_id": "user-1", "$set": {"a": 1}, "$unset": ["b"]},
        {"$token": "mp-token", "$distinct_id": "user-1"},
        {"$token": "mp-token", "$distinct_id": "user-1", "$set": ["a"]},
        {"$token": "mp-token", "$distinct_id": "null", "$set": {"a": 1}},
    ],
    ids=["wrong token", "no distinct_id", "two operations", "no operation", "set of a list", "placeholder id"],
)
async def test_mixpanel_engage_refuses_bad_updates_with_0(update):
    good = {"$token": "mp-token", "$distinct_id": "user-2", "$set": {"a": 1}}
    async with mixpanel() as double:
        status, answer, _ = await mp_form(double, "/engage", [good, update], verbose=True)
    assert status == 200 and answer["status"] == 0 and answer["error"]
    assert double.profiles == {} and [f.index for f in double.failed] == [1]


async def test_mixpanel_groups_applies_group_updates_and_refuses_incomplete_ones():
    update = {"$token": "mp-token", "$group_key": "company_id", "$group_id": "c1", "$set": {"$name": "Acme"}}
    async with mixpanel() as double:
        ok = await mp_form(double, "/groups", [update])
        refused = await mp_form(
            double, "/groups", [{"$token": "mp-token", "$group_key": "company_id", "$set": {"a": 1}}]
        )
    assert (ok[1], refused[1]) == (1, 0)
    assert double.groups == {("company_id", "c1"): {"$name": "Acme"}}


# ---------------------------------------------------------------------------------------------- Amplitude


def amp_event(insert_id: Any = "msg-1", **changes: Any) -> dict[str, Any]:
    """The fact sheet's example event (§3)."""
    event: dict[str, Any] = {
        "user_id": "u12345", "device_id": "anon-1", "event_type": "Order Completed", "time": 1718000000000,
        "insert_id": insert_id, "session_id": 1717999000000, "event_properties": {},
        "user_properties": {"$set": {"plan": "pro"}}, "revenue": 30, "price": 15, "quantity": 2,
        "productId": "sku1", "revenueType": "Purchase", "library": "segment",
    }  # fmt: skip
    event.update(changes)
    return {k: v for k, v in event.items() if v is not DROP}


def amplitude() -> AmplitudeDouble:
    return AmplitudeDouble(api_key="amp-key", now=clock)


async def amp_upload(double: AmplitudeDouble, events: Any, path: str = "/2/httpapi", **body: Any):
    payload = {"api_key": "amp-key", "events": events, **body}
    return await post(f"{double.url}{path}", json=payload)


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
async def test_amplitude_ingests_the_documented_example(path):
    async with amplitude() as double:
        status, answer, _ = await amp_upload(double, [amp_event()], path, options={"min_id_length": 5})
    assert status == 200
    assert (answer["code"], answer["events_ingested"], answer["server_upload_time"]) == (200, 1, int(NOW * 1000))
    assert answer["payload_size_bytes"] > 0
    assert double.accepted == [amp_event()]


async def test_amplitude_takes_a_gzipped_body():
    body = gzip.compress(json.dumps({"api_key": "amp-key", "events": [amp_event()]}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with amplitude() as double:
        status, _, _ = await post(f"{double.url}/2/httpapi", data=body, headers=headers)
    assert status == 200 and len(double.accepted) == 1


@pytest.mark.parametrize(
    "payload, answer",
    [
        ({"api_key": "wrong", "events": [amp_event()]}, {"code": 400, "error": "Invalid API key: wrong"}),
        (
            {"events": [amp_event()]},
            {"code": 400, "error": "Request missing required field", "missing_field": "api_key"},
        ),
        ({"api_key": "amp-key"}, {"code": 400, "error": "Request missing required field", "missing_field": "events"}),
    ],
    ids=["wrong key", "no key", "no events"],
)
async def test_amplitude_refuses_the_request_level_errors(payload, answer):
    async with amplitude() as double:
        status, body, _ = await post(f"{double.url}/2/httpapi", json=payload)
    assert (status, body) == (400, answer)
    assert double.accepted == []


async def test_amplitude_refuses_a_body_that_is_not_application_json():
    async with amplitude() as double:
        status, _, _ = await post(
            f"{double.url}/2/httpapi",
            data=json.dumps({"api_key": "amp-key", "events": [amp_event()]}),
            headers={"Content-Type": "text/plain"},
        )
    assert status == 400 and double.accepted == []


async def test_amplitude_httpapi_refuses_2001_events_and_1_mb_with_413_where_batch_takes_them():
    many = [amp_event(f"m{i}") for i in range(2001)]
    big = [amp_event(f"b{i}", event_properties={"blob": "x" * 100_000}) for i in range(10)]
    async with amplitude() as double:
        many_status, many_answer, _ = await amp_upload(double, many)
        big_status, _, _ = await amp_upload(double, big)
        assert double.accepted == []
        batch_many, _, _ = await amp_upload(double, many, "/batch")
        batch_big, _, _ = await amp_upload(double, big, "/batch")
    assert (many_status, many_answer) == (413, {"code": 413, "error": "Payload too large"})
    assert (big_status, batch_many, batch_big) == (413, 200, 200)
    assert len(double.accepted) == 2011


async def test_amplitude_batch_refuses_20_mb_with_413():
    events = [amp_event(f"b{i}", event_properties={"blob": "x" * 1_000_000}) for i in range(21)]
    body = gzip.compress(json.dumps({"api_key": "amp-key", "events": events}).encode())
    async with amplitude() as double:
        status, _, _ = await post(
            f"{double.url}/batch", data=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
    assert status == 413 and double.accepted == []


AMP_BAD_EVENTS = [
    ("no event_type", amp_event(event_type=DROP), "events_with_missing_fields", {"event_type": [1]}),
    (
        "no ids",
        amp_event(user_id=DROP, device_id=DROP),
        "events_with_missing_fields",
        {"user_id": [1], "device_id": [1]},
    ),
    ("short user_id", amp_event(user_id="u1"), "events_with_invalid_id_lengths", {"user_id": [1]}),
    ("short device_id", amp_event(device_id="d1", user_id=DROP), "events_with_invalid_id_lengths", {"device_id": [1]}),
    (
        "all-zero device_id",
        amp_event(device_id="00000000-0000-0000-0000-000000000000"),
        "events_with_invalid_fields",
        {"device_id": [1]},
    ),
    ("time in seconds as float", amp_event(time=1718000000.5), "events_with_invalid_fields", {"time": [1]}),
    ("time as a string", amp_event(time="2024-06-10T06:13:20Z"), "events_with_invalid_fields", {"time": [1]}),
    (
        "event_properties as a list",
        amp_event(event_properties=[1]),
        "events_with_invalid_fields",
        {"event_properties": [1]},
    ),
    ("numeric user_id", amp_event(user_id=1234567), "events_with_invalid_fields", {"user_id": [1]}),
]


@pytest.mark.parametrize("case, bad, key, listed", AMP_BAD_EVENTS, ids=[c[0] for c in AMP_BAD_EVENTS])
@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
async def test_amplitude_refuses_a_request_with_a_bad_event_and_ingests_none_of_it(path, case, bad, key, listed):
    async with amplitude() as double:
        status, answer, _ = await amp_upload(double, [amp_event("g1"), bad, amp_event("g2")], path)
    assert status == 400 and answer["code"] == 400
    assert answer[key] == listed
    assert double.accepted == []


async def test_amplitude_min_id_length_option_lets_shorter_ids_through():
    async with amplitude() as double:
        status, _, _ = await amp_upload(
            double, [amp_event(user_id="u12", device_id=DROP)], options={"min_id_length": 3}
        )
    assert status == 200 and double.accepted[0]["user_id"] == "u12"


async def test_amplitude_resending_without_the_listed_events_ingests_the_rest_once():
    events = [amp_event("r0"), amp_event("r1", event_type=DROP), amp_event("r2")]
    async with amplitude() as double:
        _, answer, _ = await amp_upload(double, events)
        listed = {i for indices in answer["events_with_missing_fields"].values() for i in indices}
        status, _, _ = await amp_upload(double, [e for i, e in enumerate(events) if i not in listed])
    assert status == 200
    assert [e["insert_id"] for e in double.accepted] == ["r0", "r2"]


async def test_amplitude_deduplicates_on_insert_id_for_7_days():
    now = [NOW]
    async with AmplitudeDouble(now=lambda: now[0]) as double:
        await amp_upload(double, [amp_event("x1"), amp_event("x1"), amp_event(DROP), amp_event(DROP)])
        now[0] += 7 * 86400 - 1
        await amp_upload(double, [amp_event("x1")])
        now[0] += 2
        await amp_upload(double, [amp_event("x1")])
    assert [e.get("insert_id") for e in double.accepted] == ["x1", None, None, "x1"]
    assert len(double.duplicates) == 2


async def test_amplitude_throttled_ids_get_429_naming_them_and_nothing_is_ingested():
    async with amplitude() as double:
        double.throttle(users=("u12345",))
        status, answer, _ = await amp_upload(double, [amp_event("t1", user_id="other-user"), amp_event("t2")])
        double.throttle(devices=("anon-1",), daily_quota=True)
        _, daily, _ = await amp_upload(double, [amp_event("t3", user_id="other-user")])
        double.clear_throttles()
        after, _, _ = await amp_upload(double, [amp_event("t4")])
    assert status == 429
    assert (answer["throttled_users"], answer["throttled_events"]) == ({"u12345": 31}, [1])
    assert daily["exceeded_daily_quota_devices"] == {"anon-1": 500_001}
    assert after == 200 and [e["insert_id"] for e in double.accepted] == ["t4"]


async def test_amplitude_silenced_devices_get_400_naming_them():
    async with amplitude() as double:
        double.silence("anon-1")
        status, answer, _ = await amp_upload(double, [amp_event("s1", device_id="other-device"), amp_event("s2")])
    assert status == 400
    assert (answer["silenced_devices"], answer["silenced_events"]) == (["anon-1"], [1])
    assert double.accepted == []


async def test_amplitude_scripted_429_names_the_request_s_users_and_devices():
    async with amplitude() as double:
        double.fail_next(429)
        status, answer, _ = await amp_upload(double, [amp_event()])
    assert status == 429
    assert answer["throttled_users"] == {"u12345": 31} and answer["throttled_devices"] == {"anon-1": 31}
    assert double.accepted == []


async def amp_form(double: AmplitudeDouble, path: str, **form: Any):
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
    return await post(f"{double.url}{path}", data=encoded)


async def test_amplitude_identify_takes_form_encoded_identifications():
    identification = {"user_id": "u12345", "user_properties": {"$set": {"plan": "pro"}, "$setOnce": {"first": "x"}}}
    async with amplitude() as double:
        single = await amp_form(double, "/identify", api_key="amp-key", identification=identification)
        many = await amp_form(
            double,
            "/identify",
            api_key="amp-key",
            identification=[{"device_id": "anon-1", "user_properties": {"a": 1}}],
        )
    assert (single[0], single[1], many[0], many[1]) == (200, "success", 200, "success")
    assert double.identifications == [identification, {"device_id": "anon-1", "user_properties": {"a": 1}}]


@pytest.mark.parametrize(
    "form",
    [
        {"api_key": "wrong", "identification": {"user_id": "u12345"}},
        {"identification": {"user_id": "u12345"}},
        {"api_key": "amp-key"},
        {"api_key": "amp-key", "identification": {"user_properties": {"a": 1}}},
        {"api_key": "amp-key", "identification": {"user_id": "u1"}},
        {"api_key": "amp-key", "identification": {"user_id": "u12345", "user_properties": {"$set": {"a": 1}, "b": 2}}},
        {"api_key": "amp-key", "identification": "{not json"},
    ],
    ids=["wrong key", "no key", "no identification", "no ids", "short id", "mixed operations", "not json"],
)
async def test_amplitude_identify_refuses_bad_requests_with_400(form):
    async with amplitude() as double:
        status, _, _ = await amp_form(double, "/identify", **form)
    assert status == 400 and double.identifications == []


async def test_amplitude_identify_refuses_a_json_body():
    async with amplitude() as double:
        status, _, _ = await post(
            f"{double.url}/identify", json={"api_key": "amp-key", "identification": {"user_id": "u12345"}}
        )
    assert status == 400 and double.identifications == []


async def test_amplitude_identify_is_throttled_like_events():
    async with amplitude() as double:
        double.throttle(users=("u12345",))
        status, answer, _ = await amp_form(double, "/identify", api_key="amp-key", identification={"user_id": "u12345"})
    assert status == 429 and answer["throttled_users"] == {"u12345": 31} and double.identifications == []


async def test_amplitude_groupidentify_and_usermap():
    group = {"group_type": "company", "group_value": "Acme", "group_properties": {"$set": {"plan": "pro"}}}
    async with amplitude() as double:
        ok_group = await amp_form(double, "/groupidentify", api_key="amp-key", identification=group)
        bad_group = await amp_form(
            double, "/groupidentify", api_key="amp-key", identification={"group_type": "company"}
        )
        ok_map = await amp_form(
            double, "/usermap", api_key="amp-key", mapping=[{"user_id": "old-id", "global_user_id": "new-id"}]
        )
        bad_map = await amp_form(double, "/usermap", api_key="amp-key", mapping=[{"user_id": "old-id"}])
    assert [r[0] for r in (ok_group, bad_group, ok_map, bad_map)] == [200, 400, 200, 400]
    assert double.group_identifications == [group]
    assert double.user_mappings == [{"user_id": "old-id", "global_user_id": "new-id"}]


def test_amplitude_double_stands_for_one_regional_host():
    assert [AmplitudeDouble(region=r).host for r in ("US", "EU")] == ["api2.amplitude.com", "api.eu.amplitude.com"]


def test_threaded_double_passes_attribute_writes_to_the_double():
    inner = GA4Double(now=clock)
    with ThreadedDouble(inner) as double:
        double.delay = 0.25
    assert inner.delay == 0.25
