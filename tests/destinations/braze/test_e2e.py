"""End to end: Segment's Python SDK -> the collector process -> a braze destination -> the Braze
double, through the real dispatcher: identify, track, Order Completed and audience events as
Braze objects (anonymous users by alias), more than 75 events cut into requests of 75, an object
Braze refuses dead-lettered with its reason while the rest is delivered, 429 waiting until
X-RateLimit-Reset, 5xx retried, a 401 that waits for the key."""

from __future__ import annotations

import time
import uuid
from typing import Any

from segment.analytics.client import Client

from tests.e2e.helpers import FAST_RETRY, STORAGE, dead_letters, wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.braze import BrazeDouble

SOURCE_KEY = "wk_braze_e2e"
API_KEY = "braze-e2e-rest-key"
DESTINATION = "crm"


def collector_config(double: Any, **overrides: Any) -> dict:
    destination = {"type": "braze", "api_key": API_KEY, "endpoint": double.url, "app_id": "app-e2e",
                   "concurrency": 1, "batch": {"max_events": 200, "max_wait": "0.3s"}, "retry": FAST_RETRY,
                   **overrides}
    return {"storage": STORAGE, "sources": {"app": {"write_key": SOURCE_KEY}},
            "destinations": {DESTINATION: destination}}


def delivered(collector: Any) -> float:
    return collector.metric("collector_delivered_events_total", destination=DESTINATION)


def test_segment_calls_become_braze_objects(collector_factory):
    with ThreadedDouble(BrazeDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        client = Client(SOURCE_KEY, host=collector.url, sync_mode=True, max_retries=1, timeout=10)
        run = uuid.uuid4().hex[:8]
        user, anon = f"user-{run}", f"anon-{run}"
        calls = [
            client.identify(user, {"email": "ada@example.com", "firstName": "Ada", "plan": "pro"}),
            client.track(anonymous_id=anon, event="Viewed Pricing", properties={"plan": "pro"}),
            client.track(user, "Order Completed", {"currency": "EUR", "order_id": "o1", "products": [
                {"product_id": "p1", "price": 19, "quantity": 1}, {"product_id": "p2", "price": 3.25, "quantity": 2}]}),
            client.track(user, "Audience Entered", {"audience_key": "high_value"}),
        ]
        assert all(ok for ok, _ in calls)
        sent = [message for _, message in calls]
        wait_until("every event delivered", lambda: delivered(collector) == len(sent))

        for request in double.requests:
            assert (request.method, request.path, request.status) == ("POST", "/users/track", 201)
            assert request.headers["Authorization"] == f"Bearer {API_KEY}"
            assert request.headers["Content-Type"] == "application/json"
            assert "errors" not in request.answer
        assert double.profiles[user] == {"_update_existing_only": False, "email": "ada@example.com",
                                         "first_name": "Ada", "plan": "pro", "high_value": True}
        (event,) = double.objects("events")
        assert event == {"user_alias": {"alias_name": anon, "alias_label": "anonymous_id"},
                         "_update_existing_only": False, "name": "Viewed Pricing", "app_id": "app-e2e",
                         "time": event["time"], "properties": {"plan": "pro"}}
        assert event["time"][:19] == sent[1]["timestamp"][:19]  # the event's own time, not receivedAt
        assert [(p["external_id"], p["product_id"], p["price"], p["quantity"], p["currency"])
                for p in double.objects("purchases")] == [(user, "p1", 19, 1, "EUR"), (user, "p2", 3.25, 2, "EUR")]
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0


def test_more_than_75_events_are_sent_75_a_request(collector_factory):
    with ThreadedDouble(BrazeDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double, batch={"max_events": 200, "max_wait": "1s"}))
        client = Client(SOURCE_KEY, host=collector.url, upload_size=100, upload_interval=0.2, max_retries=1)
        for n in range(160):
            client.track(f"u{n}", "Signed Up", {"n": n})
        client.flush()
        client.join()
        wait_until("160 delivered", lambda: delivered(collector) == 160, timeout=15)
        assert all(r.status == 201 and len(r.json["events"]) <= 75 for r in double.requests)
        assert len(double.requests) >= 3  # 160 events cannot go in fewer requests of 75
        assert sorted(e["properties"]["n"] for e in double.objects("events")) == list(range(160))


def test_a_refused_object_is_dead_lettered_and_the_rest_delivered(collector_factory):
    with ThreadedDouble(BrazeDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double, batch={"max_events": 3, "max_wait": "2s"}))
        # Braze accepts events 0 and 2 of the request and names events[1] as refused.
        double.fail_next(201, {"message": "success", "events_processed": 2,
                               "errors": [{"type": "Event name is invalid", "input_array": "events", "index": 1}]})
        client = Client(SOURCE_KEY, host=collector.url, upload_size=3, upload_interval=0.2, max_retries=1)
        for n in range(3):
            client.track("u1", f"Event {n}", {"n": n})
        client.flush()
        client.join()
        wait_until("one dead-lettered", lambda: collector.metric(
            "collector_dead_lettered_events_total", destination=DESTINATION) == 1)
        wait_until("two delivered", lambda: delivered(collector) == 2)
        assert [[e["name"] for e in r.json["events"]] for r in double.requests] == [["Event 0", "Event 1", "Event 2"]]
        (letter,) = dead_letters(collector.config["storage"]["path"], DESTINATION)
        assert letter["event"]["event"] == "Event 1"
        assert letter["reason"] == "track_event (Track Calls): Braze refused events[1]: Event name is invalid"
        assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) == 0


def test_429_waits_for_the_rate_limit_reset_and_5xx_and_401_are_retried(collector_factory):
    with ThreadedDouble(BrazeDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        client = Client(SOURCE_KEY, host=collector.url, sync_mode=True, max_retries=1)

        double.fail_next(429, headers={"X-RateLimit-Reset": str(int(time.time()) + 3),
                                       "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "250000"})
        client.track("u1", "After a 429")
        double.wait_for(lambda: double.objects("events"), timeout=10, what="the event after the 429")
        refused, taken = double.requests[0], double.requests[-1]
        assert (refused.status, taken.status, len(double.requests)) == (429, 201, 2)
        assert taken.at - refused.at >= 1.5  # until the reset (2-3 s away), where the backoff is 0.1 s

        double.fail_next(500, times=2)
        client.track("u1", "After two 500s")
        double.wait_for(lambda: len(double.objects("events")) == 2, timeout=10, what="the event after 500s")
        assert [r.status for r in double.requests[2:]] == [500, 500, 201]

        double.api_key = "rotated"  # the configured key no longer works: 401, and the event waits
        client.track("u1", "While the key is wrong")
        double.wait_for(lambda: len(double.answered(401)) >= 3, timeout=10, what="three 401s")
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
        double.api_key = API_KEY
        double.wait_for(lambda: len(double.objects("events")) == 3, timeout=10, what="the event after the 401s")
        assert [e["name"] for e in double.objects("events")] == ["After a 429", "After two 500s", "While the key is wrong"]
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
        assert API_KEY not in collector.logs()
