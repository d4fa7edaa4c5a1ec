"""End to end: Segment's Python SDK -> the collector process -> a customerio destination -> the
Customer.io Track API double, through the real dispatcher: every call type and the audience events
as Track API v2 entities (URL, Basic auth, headers, body), a batch over 500 KB split, a 32 KB entity
and an entity Customer.io refuses in its 207 dead-lettered with their reasons while the rest is
delivered, 429 + Retry-After, 5xx and 401 retried."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from segment.analytics.client import Client

from tests.e2e.helpers import FAST_RETRY, STORAGE, dead_letters, post, wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.customerio import BATCH_MAX_BYTES, CustomerIODouble

SOURCE_KEY = "wk_customerio_e2e"
SITE_ID, API_KEY = "site-e2e", "cio-e2e-key"
DESTINATION = "lifecycle_messaging"
AUTH = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()


def collector_config(double: Any, **overrides: Any) -> dict:
    destination = {"type": "customerio", "site_id": SITE_ID, "api_key": API_KEY, "endpoint": double.url,
                   "concurrency": 1, "batch": {"max_events": 100, "max_wait": "0.2s"}, "retry": FAST_RETRY,
                   **overrides}
    return {"storage": STORAGE, "sources": {"app": {"write_key": SOURCE_KEY}},
            "destinations": {DESTINATION: destination}}


def test_every_call_type_and_audiences_reach_customerio_as_entities(collector_factory):
    with ThreadedDouble(CustomerIODouble(site_id=SITE_ID, api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        client = Client(SOURCE_KEY, host=collector.url, sync_mode=True, max_retries=1, timeout=10)
        run = uuid.uuid4().hex[:8]
        user, anon = f"user-{run}", f"anon-{run}"
        calls = [
            client.track(anonymous_id=anon, event="Viewed Pricing", properties={"plan": "pro"}),
            client.identify(user, {"email": "ada@example.com", "plan": "pro"}, anonymous_id=anon),
            client.page(user, name="Quick start", properties={"url": "https://docs.example.com/start"}),
            client.screen(user, name="Home", properties={"variant": "B"}),
            client.group(user, f"g-{run}", {"name": "Initech", "employees": 120}),
            client.alias(anon, user),
            client.track(user, "Order Completed", {"total": 42.5}, message_id=f"order-{run}"),
            client.track(user, "Audience Entered", {"audience_key": "big_spenders"}),
        ]
        assert all(ok for ok, _ in calls)
        sent = [message for _, message in calls]
        double.wait_for_accepted(len(sent), timeout=15)
        wait_until("every event counted delivered", lambda: collector.metric(
            "collector_delivered_events_total", destination=DESTINATION) == len(sent))

        for request in double.requests:
            assert (request.method, request.path, request.status) == ("POST", "/api/v2/batch", 200)
            assert request.headers["Authorization"] == AUTH
            assert request.headers["Content-Type"] == "application/json"
            assert set(request.json) == {"batch"}
        accepted = list(double.accepted)
        assert len(accepted) == len(sent)
        by_action: dict[str, list[dict]] = {}
        for entity in accepted:
            by_action.setdefault(entity["action"], []).append(entity)
        anonymous, order = sorted(by_action["event"], key=lambda e: e["name"] != "Viewed Pricing")
        assert anonymous["identifiers"] == {"anonymous_id": anon} and anonymous["attributes"] == {"plan": "pro"}
        assert anonymous["id"] == sent[0]["messageId"]
        stamp = datetime.fromisoformat(str(sent[0]["timestamp"])).timestamp()
        assert isinstance(anonymous["timestamp"], int) and abs(anonymous["timestamp"] - stamp) < 2
        assert (order["identifiers"], order["name"], order["id"]) == ({"id": user}, "Order Completed", f"order-{run}")
        (page,) = by_action["page"]
        assert (page["identifiers"], page["name"]) == ({"id": user}, "https://docs.example.com/start")
        (screen,) = by_action["screen"]
        assert (screen["name"], screen["attributes"]) == ("Home", {"variant": "B"})
        assert double.objects == {("1", f"g-{run}"): {"name": "Initech", "employees": 120}}
        assert double.relationships == [("1", f"g-{run}", user)]
        assert double.merges == [({"id": user}, {"id": anon})]
        # identify (traits, email, the anonymous id) and the audience, on the same person
        assert double.people[user] == {"email": "ada@example.com", "plan": "pro", "anonymous_id": anon,
                                       "big_spenders": True}
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0


def test_refused_and_oversized_entities_are_dead_lettered_and_a_large_batch_is_split(collector_factory):
    with ThreadedDouble(CustomerIODouble(site_id=SITE_ID, api_key=API_KEY)) as double:
        # A mapping that makes one event's name empty: Customer.io refuses it in its 207.
        mappings = [{"name": "Track Calls", "fields": {"name": {"@if": {
            "exists": {"@path": "$.properties.nameless"}, "then": "", "else": {"@path": "$.event"}}}}}]
        config = collector_config(double, mappings=mappings, batch={"max_events": 100, "max_wait": "1s"})
        config["server"] = {"limits": {"max_event_bytes": "1MiB", "max_request_bytes": "8MiB"}}  # one ~800 KB request
        collector = collector_factory(config)
        events = [{"type": "track", "userId": "u1", "event": f"Big {n}", "messageId": f"big-{n}",
                   "properties": {"n": n, "pad": "x" * 25_000}} for n in range(30)]  # ~750 KB
        events.append({"type": "track", "userId": "u1", "event": "Huge", "messageId": "huge",
                       "properties": {"n": 30, "pad": "x" * 40_000}})
        events.append({"type": "track", "userId": "u1", "event": "Nameless", "messageId": "nameless",
                       "properties": {"n": 31, "nameless": True}})
        status, _ = post(collector.url, "/v1/batch", {"batch": events}, SOURCE_KEY, timeout=30)
        assert status == 200
        double.wait_for_accepted(30, timeout=15)
        wait_until("two dead-lettered", lambda: collector.metric(
            "collector_dead_lettered_events_total", destination=DESTINATION) == 2)
        wait_until("30 delivered", lambda: collector.metric(
            "collector_delivered_events_total", destination=DESTINATION) == 30)
        assert len(double.requests) >= 2
        assert all(len(r.decoded) <= BATCH_MAX_BYTES for r in double.requests)
        assert {r.status for r in double.requests} <= {200, 207} and any(r.status == 207 for r in double.requests)
        assert sorted(e["attributes"]["n"] for e in double.accepted) == list(range(30))
        letters = {l["event"]["messageId"]: l["reason"] for l in dead_letters(collector.config["storage"]["path"], DESTINATION)}
        assert set(letters) == {"huge", "nameless"}
        assert "over the 32000 Customer.io accepts" in letters["huge"]
        assert "Customer.io refused the entity: a event needs a name (field name)" in letters["nameless"]
        assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) == 0


def test_429_5xx_and_401_are_retried_until_customerio_takes_the_events(collector_factory):
    with ThreadedDouble(CustomerIODouble(site_id=SITE_ID, api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        client = Client(SOURCE_KEY, host=collector.url, sync_mode=True, max_retries=1)

        double.fail_next(429, headers={"Retry-After": "2"})
        client.track("u1", "After a 429")
        double.wait_for_accepted(1, timeout=10)
        refused, taken = double.requests[0], double.requests[-1]
        assert (refused.status, taken.status, len(double.requests)) == (429, 200, 2)
        assert taken.at - refused.at >= 1.9  # Retry-After: 2, where the backoff alone is 0.1 s

        double.fail_next(500, times=1)
        double.fail_next(503, times=1)
        client.track("u1", "After a 500 and a 503")
        double.wait_for_accepted(2, timeout=10)
        assert [r.status for r in double.requests[2:]] == [500, 503, 200]

        double.api_key = "rotated"  # the configured key no longer works: 401, and the events wait
        client.track("u1", "While the key is wrong")
        double.wait_for(lambda: len(double.answered(401)) >= 3, timeout=10, what="three 401s")
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
        double.api_key = API_KEY
        double.wait_for_accepted(3, timeout=10)
        assert [e["name"] for e in double.accepted] == ["After a 429", "After a 500 and a 503", "While the key is wrong"]
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
        assert API_KEY not in collector.logs()
