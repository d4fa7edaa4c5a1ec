"""Requests to the Braze double and the reading of its answers: the 75-object limits, per-object
errors by array and index, 429 with Retry-After or X-RateLimit-Reset, 5xx and credentials."""

from __future__ import annotations

import time

from collector.destinations.braze.api import _refused, pack, rate_limit_wait
from collector.destinations.actions.context import Response
from tests.destinations.fakes import envelopes, started

from .support import API_KEY, destination, track


async def test_requests_carry_the_bearer_key_and_json(double, http, tmp_path):
    async with started(destination(double, http, tmp_path)) as running:
        assert (await running.send(envelopes([track(1)]))).ok
    (request,) = double.requests
    assert (request.method, request.path, request.headers["Authorization"]) == ("POST", "/users/track", f"Bearer {API_KEY}")
    assert request.headers["Content-Type"] == "application/json" and set(request.json) == {"events"}


async def test_more_than_75_events_are_split_into_requests_of_75(double, http, tmp_path):
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes([track(n, user=f"u{n}") for n in range(160)]))
    assert outcome.ok, outcome
    assert sorted(len(r.json["events"]) for r in double.requests) == [10, 75, 75]
    assert sorted(e["name"] for e in double.objects("events")) == sorted(f"Event {n}" for n in range(160))


async def test_purchases_of_many_products_are_packed_75_a_request(double, http, tmp_path):
    products = [{"product_id": f"p{i}", "price": 1} for i in range(100)]
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes([track(1, event="Order Completed", products=products)]))
    assert outcome.ok, outcome
    assert [len(r.json["purchases"]) for r in double.requests] == [75, 25]
    assert len(double.objects("purchases")) == 100


def test_pack_keeps_order_and_limit():
    objects = [(i // 2, {"i": i}) for i in range(151)]
    packed = pack(objects)
    assert [len(p) for p in packed] == [75, 75, 1] and [o for p in packed for o in p] == objects


async def test_objects_braze_refuses_are_rejected_with_its_reason_and_the_rest_delivered(double, http, tmp_path):
    double.fail_next(201, {"message": "success", "events_processed": 2,
                           "errors": [{"type": "Event name is invalid", "input_array": "events", "index": 1}]})
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes([track(1), track(2), track(3)]))
    assert [o.kind for o in outcome.per_event] == ["ok", "reject", "ok"]
    assert outcome.per_event[1].reason.endswith("Braze refused events[1]: Event name is invalid")


async def test_one_refused_purchase_rejects_its_order_only(double, http, tmp_path):
    orders = [track(n, event="Order Completed", products=[{"product_id": f"p{n}-{i}", "price": 1} for i in range(2)])
              for n in range(3)]
    # purchases[3] is the second product of the second order.
    double.fail_next(201, {"message": "success",
                           "errors": [{"type": "Invalid price", "input_array": "purchases", "index": 3},
                                      {"type": "elsewhere", "input_array": "events", "index": 0}]})
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes(orders))
    assert [o.kind for o in outcome.per_event] == ["ok", "reject", "ok"]
    assert outcome.per_event[1].reason.endswith("Braze refused purchases[3]: Invalid price")


def test_errors_index_the_request_not_the_batch():
    chunk = [(75, {}), (76, {}), (76, {}), (77, {})]
    refused = _refused("purchases", chunk, [{"type": "bad", "input_array": "purchases", "index": 2},
                                            {"type": "x", "input_array": "events", "index": 0},
                                            {"type": "out of range", "input_array": "purchases", "index": 9}])
    assert refused == {76: "Braze refused purchases[2]: bad"}


async def test_429_honours_retry_after(double, http, tmp_path):
    double.fail_next(429, headers={"Retry-After": "12"})
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes([track(1)]))
        paused = running.pause.remaining()
    assert (outcome.kind, outcome.retry_after) == ("retry", 12.0)
    assert 10 < paused <= 12


async def test_429_without_retry_after_waits_until_the_rate_limit_reset(double, http, tmp_path):
    double.fail_next(429, headers={"X-RateLimit-Reset": str(int(time.time()) + 30)})
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes([track(1)]))
        paused = running.pause.remaining()
    assert outcome.kind == "retry" and 25 < outcome.retry_after <= 30 and 25 < paused <= 30


def test_rate_limit_wait_reads_the_headers():
    assert rate_limit_wait(Response(429, {"Retry-After": "3"}, b""), 1000.0) == 3.0
    assert rate_limit_wait(Response(429, {"X-RateLimit-Reset": "1010"}, b""), 1000.0) == 10.0
    assert rate_limit_wait(Response(429, {"X-RateLimit-Reset": "990"}, b""), 1000.0) is None
    assert rate_limit_wait(Response(429, {}, b""), 1000.0) is None


async def test_5xx_is_retried_and_401_waits_for_credentials(double, http, tmp_path):
    double.fail_next(503)
    async with started(destination(double, http, tmp_path)) as running:
        server_error = await running.send(envelopes([track(1)]))
        double.api_key = "rotated"
        refused = await running.send(envelopes([track(2)]))
    assert server_error.kind == "retry" and "HTTP 503" in server_error.reason
    assert refused.kind == "retry" and refused.credentials_refused and "HTTP 401" in refused.reason
    assert API_KEY not in refused.reason


async def test_a_fatal_400_rejects_the_request(double, http, tmp_path):
    double.fail_next(400, {"message": "Invalid request"})
    async with started(destination(double, http, tmp_path)) as running:
        outcome = await running.send(envelopes([track(1)]))
    assert outcome.kind == "reject" and "Invalid request" in outcome.reason
