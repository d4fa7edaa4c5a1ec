"""The amplitude destination against the Amplitude double: requests, limits, and the reading of
Amplitude's answers into one outcome per event (400 naming events, 413, 429, 5xx, bad key)."""

from __future__ import annotations

import json

import pytest

from collector.destinations.amplitude import Amplitude, USERMAP_URLS
from collector.destinations.base import BuildContext
from tests.destinations.fakes import envelopes

from .support import build, kinds, reasons, settings, track


def events_of(call) -> list[dict]:
    return call.json["events"]


def order(user: str, n: int, products: int = 2, **properties) -> dict:
    return {**track(user, n, "Order Completed", revenue=10.0, **properties),
            "properties": {"n": n, "revenue": 10.0,
                           "products": [{"product_id": f"p{k}", "price": 5, "quantity": 1} for k in range(products)],
                           **properties}}


# --- Requests ----------------------------------------------------------------------------------------


async def test_events_are_posted_as_json_with_the_api_key_in_the_body(double, http):
    outcome = await build(double, http).send(envelopes([track("user-1", 0), track("user-2", 1)]))
    assert outcome.kind == "ok"
    (call,) = double.requests
    assert (call.method, call.path, call.headers["Content-Type"]) == ("POST", "/2/httpapi", "application/json")
    assert call.json["api_key"] == "amp-key" and "options" not in call.json
    assert [(e["user_id"], e["insert_id"], e["time"]) for e in events_of(call)] == [
        ("user-1", "m0", 1732800360123), ("user-2", "m1", 1732800360123)]
    assert double.accepted == events_of(call)


async def test_use_batch_endpoint_sends_events_to_batch(double, http):
    assert (await build(double, http, use_batch_endpoint=True).send(envelopes([track("user-1", 0)]))).kind == "ok"
    assert [call.path for call in double.requests] == ["/batch"]


async def test_min_id_length_goes_with_every_request_and_lets_shorter_ids_through(double, http):
    events = [track("abc", 0), {"type": "identify", "userId": "user-1", "traits": {"plan": "pro"}, "messageId": "i"}]
    outcome = await build(double, http, min_id_length=3).send(envelopes(events))
    assert outcome.kind == "ok", outcome
    assert [e["user_id"] for e in double.accepted] == ["abc"]
    upload = next(call for call in double.requests if call.path == "/2/httpapi")
    identify = next(call for call in double.requests if call.path == "/identify")
    assert upload.json["options"] == {"min_id_length": 3}
    assert json.loads(identify.form["options"]) == {"min_id_length": 3}


def test_the_region_picks_amplitudes_hosts_and_an_endpoint_replaces_only_the_host():
    eu = Amplitude("a", settings(region="eu"), BuildContext(None, ""))
    assert eu.url("/2/httpapi") == "https://api.eu.amplitude.com/2/httpapi"
    assert eu.url(USERMAP_URLS["eu"]) == "https://api.eu.amplitude.com/usermap"
    us = Amplitude("a", settings(), BuildContext(None, ""))
    assert us.url("/identify") == "https://api2.amplitude.com/identify"
    assert us.url(USERMAP_URLS["us"]) == "https://api.amplitude.com/usermap"
    proxied = Amplitude("a", settings("http://127.0.0.1:9"), BuildContext(None, ""))
    assert proxied.url(USERMAP_URLS["us"]) == "http://127.0.0.1:9/usermap"


# --- Limits ------------------------------------------------------------------------------------------


async def test_a_request_holds_at_most_2000_events_and_a_purchase_keeps_its_products_with_it(double, http):
    orders = [order(f"user-{n:03d}", n) for n in range(700)]  # 2,100 Amplitude events
    outcome = await build(double, http).send(envelopes(orders))
    assert outcome.kind == "ok", outcome
    sizes = [len(events_of(call)) for call in double.requests]
    assert sizes == [1998, 102] and all(call.status == 200 for call in double.requests)
    first = events_of(double.requests[0])
    assert [e["event_type"] for e in first[-3:]] == ["Order Completed", "Product Purchased", "Product Purchased"]
    assert len(double.accepted) == 2100


async def test_requests_stay_under_one_megabyte(double, http):
    padding = "x" * 900
    outcome = await build(double, http).send(envelopes([track(f"user-{n}", n, pad=padding) for n in range(1500)]))
    assert outcome.kind == "ok", outcome
    assert len(double.requests) >= 2
    assert all(len(call.decoded) <= 1_000_000 and call.status == 200 for call in double.requests)
    assert sorted(e["insert_id"] for e in double.accepted) == sorted(f"m{n}" for n in range(1500))


async def test_an_event_larger_than_a_request_is_rejected_without_sending_it(double, http):
    events = [track("user-1", 0), track("user-2", 1, pad="x" * 1_000_000)]
    outcome = await build(double, http).send(envelopes(events))
    assert kinds(outcome, 2) == ["ok", "reject"]
    assert "over Amplitude's 2000 records or 1000000 bytes a request" in outcome.per_event[1].reason
    assert [e["insert_id"] for e in double.accepted] == ["m0"]


async def test_a_413_is_halved_until_each_part_fits(http):
    from tests.vendors.amplitude import AmplitudeDouble

    async with AmplitudeDouble(api_key="amp-key", httpapi_max_bytes=1500) as small:
        events = [track(f"user-{n}", n, pad="y" * 200) for n in range(8)] + [track("user-9", 9, pad="z" * 3000)]
        outcome = await build(small, http).send(envelopes(events))
    assert kinds(outcome, 9) == ["ok"] * 8 + ["reject"]
    assert "too large (HTTP 413)" in outcome.per_event[8].reason
    assert sorted(e["insert_id"] for e in small.accepted) == [f"m{n}" for n in range(8)]
    assert all(len(call.decoded) <= 1500 for call in small.requests if call.status == 200)


# --- 400: the events Amplitude names are rejected, the rest is sent again ------------------------------


async def test_a_400_rejects_the_events_it_names_and_the_rest_is_sent_again_at_once(double, http):
    events = [track("user-1", 0), track("abc", 1), track("user-2", 2), track(None, 3), track("user-3", 4)]
    outcome = await build(double, http).send(envelopes(events))
    assert kinds(outcome, 5) == ["ok", "reject", "ok", "reject", "ok"]
    assert outcome.per_event[1].reason == ("log_event (Track Calls): Amplitude refused the event 'Bought' (HTTP 400): "
                                           "events_with_invalid_id_lengths: user_id")
    assert "events_with_missing_fields: user_id; events_with_missing_fields: device_id" in outcome.per_event[3].reason
    assert [call.status for call in double.requests] == [400, 200]
    assert [e["insert_id"] for e in events_of(double.requests[1])] == ["m0", "m2", "m4"]
    assert [e["insert_id"] for e in double.accepted] == ["m0", "m2", "m4"]


async def test_a_purchase_is_rejected_whole_when_one_of_its_events_is_refused(double, http):
    zero = "00000000-0000-0000-0000-000000000000"
    bad = {**order(None, 1), "context": {"device": {"id": zero}}}
    outcome = await build(double, http).send(envelopes([order("user-1", 0), bad]))
    assert kinds(outcome, 2) == ["ok", "reject"]
    assert "(its record 1 of 3, 'Order Completed') (HTTP 400): events_with_invalid_fields: device_id" in (
        outcome.per_event[1].reason)
    assert [e["insert_id"] for e in double.accepted] == ["m0", "m0-2", "m0-3"]


async def test_events_of_a_silenced_device_are_rejected_with_amplitudes_reason(double, http):
    double.silence("device-silenced")
    events = [track(None, 0, anonymous="device-silenced"), track("user-1", 1)]
    outcome = await build(double, http).send(envelopes(events))
    assert kinds(outcome, 2) == ["reject", "ok"]
    assert outcome.per_event[0].reason.endswith("(HTTP 400): Events silenced for device_id")


async def test_a_400_naming_no_event_is_halved_until_the_refused_one_stands_alone(double, http):
    identifies = [{"type": "identify", "userId": user, "traits": {"n": n}, "messageId": f"i{n}"}
                  for n, user in enumerate(["user-0", "user-1", "abc", "user-3", "user-4"])]
    outcome = await build(double, http).send(envelopes(identifies))
    assert kinds(outcome, 5) == ["ok", "ok", "reject", "ok", "ok"]
    assert outcome.per_event[2].reason == (
        "identify_user (Identify Calls): Amplitude refused it (HTTP 400): an identification needs a user_id or "
        "device_id of at least 5 characters")
    assert sorted(i["user_id"] for i in double.identifications) == ["user-0", "user-1", "user-3", "user-4"]
    assert len(double.requests) <= 7  # 1 + halves, not one request per identification


async def test_a_400_that_names_nothing_for_one_event_rejects_it(double, http):
    double.fail_next(400, {"code": 400, "error": "Invalid JSON request body"})
    outcome = await build(double, http).send(envelopes([track("user-1", 0)]))
    assert (outcome.kind, outcome.reason) == (
        "reject", "log_event (Track Calls): Amplitude refused it (HTTP 400): Invalid JSON request body")


async def test_an_unknown_api_key_is_retried_as_a_credentials_problem_and_never_named(double, http):
    destination = build(double, http, api_key="wrong-key-4711")
    outcome = await destination.send(envelopes([track("user-1", 0), {"type": "identify", "userId": "user-1"}]))
    assert outcome.kind == "retry"
    assert "credentials refused (HTTP 400: Invalid API key); check the destination's api_key" in outcome.reason
    assert double.requests[0].answer["error"] == "Invalid API key: wrong-key-4711"
    assert "wrong-key-4711" not in outcome.reason


async def test_the_rest_waits_for_a_later_attempt_when_the_destination_is_paused_meanwhile(double, http):
    refusal = {"code": 400, "error": "Invalid field values on some events", "events_with_invalid_fields": {"time": [0]}}
    double.fail_next(400, refusal, headers={"Retry-After": "60"})
    outcome = await build(double, http).send(envelopes([track("user-1", 0), track("user-2", 1)]))
    assert kinds(outcome, 2) == ["reject", "retry"]
    assert "events_with_invalid_fields: time" in outcome.per_event[0].reason
    assert "paused by the vendor" in outcome.per_event[1].reason and outcome.per_event[1].retry_after > 50
    assert len(double.requests) == 1


# --- 429, 5xx, the network ---------------------------------------------------------------------------


async def test_a_429_retries_the_throttled_users_and_sends_the_others_after_the_pause(double, http):
    double.throttle(users=("user-hot",))
    destination = build(double, http, retry={"initial_backoff": "50ms"})
    events = [track("user-1", 0), track("user-hot", 1), track("user-2", 2), track("user-hot", 3)]
    outcome = await destination.send(envelopes(events))
    assert kinds(outcome, 4) == ["ok", "retry", "ok", "retry"]
    assert reasons(outcome, 4)[1] == ("log_event (Track Calls): HTTP 429: its user or device is throttled "
                                      "(over Amplitude's events a second per ID)")
    first, second = double.requests
    assert (first.status, second.status) == (429, 200)
    assert [e["insert_id"] for e in events_of(second)] == ["m0", "m2"]
    assert second.at - first.at >= 0.045  # not before the 429's pause (the initial backoff) is over


async def test_a_user_over_the_daily_quota_is_retried_with_that_reason(double, http):
    double.throttle(users=("user-quota",), daily_quota=True)
    outcome = await build(double, http, retry={"initial_backoff": "10ms"}).send(
        envelopes([track("user-quota", 0), track("user-1", 1)]))
    assert kinds(outcome, 2) == ["retry", "ok"]
    assert outcome.per_event[0].reason.endswith("HTTP 429: its user or device is over Amplitude's daily quota")


async def test_a_429_with_retry_after_retries_every_event_it_names_after_that_long(double, http):
    double.fail_next(429, headers={"Retry-After": "7"})
    destination = build(double, http)
    outcome = await destination.send(envelopes([track("user-1", 0), track("user-2", 1)]))
    assert (outcome.kind, outcome.retry_after) == ("retry", 7.0)
    assert 6 < destination.pause.remaining() <= 7  # every lane of the destination waits too
    assert double.accepted == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_5xx_is_retried_and_the_retry_is_ingested_once(double, http, status):
    double.fail_next(status)
    destination = build(double, http)
    batch = envelopes([track("user-1", 0), track("user-2", 1)])
    first = await destination.send(batch)
    assert first.kind == "retry" and f"HTTP {status}" in first.reason
    assert (await destination.send(batch)).kind == "ok"
    assert [e["insert_id"] for e in double.accepted] == ["m0", "m1"]


async def test_no_answer_at_all_is_retried(http):
    destination = Amplitude("a", settings("http://127.0.0.1:9"), BuildContext(http, ""))
    outcome = await destination.send(envelopes([track("user-1", 0), {"type": "identify", "userId": "user-1"}]))
    assert outcome.kind == "retry" and "ClientConnectorError" in outcome.reason


# --- Identify, group, alias --------------------------------------------------------------------------


async def test_identify_calls_are_batched_into_one_form_request(double, http):
    identifies = [{"type": "identify", "userId": f"user-{n}", "traits": {"n": n}} for n in range(3)]
    assert (await build(double, http).send(envelopes(identifies))).kind == "ok"
    (call,) = double.requests
    assert (call.path, call.headers["Content-Type"]) == ("/identify", "application/x-www-form-urlencoded")
    assert set(call.form) == {"api_key", "identification"}
    assert json.loads(call.form["identification"]) == [
        {"user_id": f"user-{n}", "user_properties": {"n": n}, "library": "segment"} for n in range(3)]


GROUP = {"name": "Group Calls", "action": "group_identify_user", "trigger": 'type = "group"'}
ALIAS = {"name": "Alias Calls", "action": "map_user", "trigger": 'type = "alias"'}


async def test_a_group_call_joins_the_user_then_describes_the_group(double, http):
    groups = [{"type": "group", "userId": "user-1", "groupId": "acme-1", "traits": {"name": "Acme", "seats": 12}},
              {"type": "group", "userId": "abc", "groupId": "short-1", "traits": {"name": "Short"}}]
    outcome = await build(double, http, mappings=[GROUP]).send(envelopes(groups))
    assert kinds(outcome, 2) == ["ok", "reject"]  # "abc" is too short a user_id for /identify
    assert double.identifications == [{"user_id": "user-1", "groups": {"[Segment] Group": "acme-1"},
                                       "user_properties": {"[Segment] Group": "acme-1"}, "library": "segment"}]
    assert double.group_identifications == [{"group_type": "[Segment] Group", "group_value": "acme-1",
                                             "group_properties": {"name": "Acme", "seats": 12}, "library": "segment"}]
    assert [call.path for call in double.requests if call.status == 200][-1] == "/groupidentify"


async def test_an_alias_maps_the_previous_id_to_the_user_id(double, http):
    alias = {"type": "alias", "previousId": "old-user-1", "userId": "user-1"}
    assert (await build(double, http, mappings=[ALIAS]).send(envelopes([alias]))).kind == "ok"
    (call,) = double.requests
    assert (call.path, set(call.form)) == ("/usermap", {"api_key", "mapping"})
    assert double.user_mappings == [{"user_id": "old-user-1", "global_user_id": "user-1"}]


async def test_group_and_alias_calls_are_not_sent_without_their_mappings(double, http):
    outcome = await build(double, http).send(envelopes([
        {"type": "group", "userId": "user-1", "groupId": "g1"}, {"type": "alias", "previousId": "a", "userId": "b"}]))
    assert outcome.kind == "skip" and double.requests == []
