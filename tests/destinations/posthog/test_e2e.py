"""End to end: Segment's Python SDK -> the collector process -> a posthog destination -> the
PostHog capture double, through the real dispatcher: every call type (anonymous events too),
the request as PostHog takes it, a 400 bisected to the event it refuses (dead-lettered with
PostHog's reason while the rest is delivered), 429 + Retry-After, 503, a 401 that waits for the
key, and more than 20 MB of events cut into requests PostHog accepts."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from segment.analytics.client import Client
from segment.analytics.request import DatetimeSerializer
from segment.analytics.version import VERSION

from tests.e2e.helpers import FAST_RETRY, STORAGE, dead_letters, post, wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.posthog import PostHogDouble

from .expected import NAMESPACE

SOURCE_KEY = "wk_posthog_e2e"
API_KEY = "phc_e2e_project_key"
DESTINATION = "product_analytics"


def collector_config(double: Any, **overrides: Any) -> dict:
    destination = {"type": "posthog", "api_key": API_KEY, "endpoint": double.url, "concurrency": 1,
                   "batch": {"max_events": 100, "max_wait": "0.2s"}, "retry": FAST_RETRY, **overrides}
    return {"storage": STORAGE, "sources": {"app": {"write_key": SOURCE_KEY}},
            "destinations": {DESTINATION: destination}}


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wire(message: dict) -> dict:
    return json.loads(json.dumps(message, cls=DatetimeSerializer))


def test_every_call_type_reaches_posthog_as_posthog_events(collector_factory):
    with ThreadedDouble(PostHogDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        client = Client(SOURCE_KEY, host=collector.url, sync_mode=True, max_retries=1, timeout=10)
        run = uuid.uuid4().hex[:8]
        user, anon = f"user-{run}", f"anon-{run}"
        hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
        calls = [
            client.track(anonymous_id=anon, event="Viewed Pricing", properties={"plan": "pro"}),
            client.identify(user, {"email": "ada@example.com", "plan": "pro"}, anonymous_id=anon),
            client.page(user, category="Docs", name="Quick start",
                        properties={"url": "https://docs.example.com/start", "path": "/start"}),
            client.screen(user, name="Home", properties={"variant": "B"}),
            client.group(user, f"g-{run}", {"name": "Initech", "employees": 120}),
            client.alias(anon, user),
            client.track(user, "Order Completed", {"total": 42.5}, message_id=f"order-{run}"),
            client.track(user, "Old Event", {"n": 1}, timestamp=hour_ago),
        ]
        assert all(ok for ok, _ in calls)
        sent = [wire(message) for _, message in calls]
        double.wait_for_accepted(len(sent), timeout=15)
        wait_until("every event counted delivered", lambda: collector.metric(
            "collector_delivered_events_total", destination=DESTINATION) == len(sent))

        by_uuid = {e.uuid: e for e in double.accepted}
        assert len(by_uuid) == len(sent) == len(double.accepted)

        def got(message: dict) -> Any:
            mid = message["messageId"]
            key = mid if mid.count("-") == 4 and len(mid) == 36 else str(uuid.uuid5(NAMESPACE, mid))
            return by_uuid[key]

        for message in sent:
            event = got(message)
            assert event.properties["$lib"] == "analytics-python"
            assert event.properties["$lib_version"] == VERSION
            assert event.properties["$ip"] == "127.0.0.1" and "$geoip_disable" not in event.properties
            # The event's own time (Segment's action sends receivedAt): the SDK's clock is ours.
            assert abs((parse_iso(event.timestamp) - parse_iso(message["timestamp"])).total_seconds()) < 2
        anonymous, identify, page, screen, group, alias, order, old = map(got, sent)
        assert (anonymous.event, anonymous.distinct_id) == ("Viewed Pricing", anon)  # Segment's action drops it
        assert anonymous.properties["plan"] == "pro"
        assert (identify.event, identify.distinct_id) == ("$identify", user)
        assert identify.properties["$anon_distinct_id"] == anon
        assert double.persons[user] == {"email": "ada@example.com", "plan": "pro"}
        assert (page.event, page.properties["$current_url"], page.properties["$pathname"]) == (
            "$pageview", "https://docs.example.com/start", "/start")
        assert page.properties["name"] == "Quick start" and page.properties["category"] == "Docs"
        assert (screen.event, screen.properties["$screen_name"]) == ("$screen", "Home")
        assert screen.properties["variant"] == "B"
        assert double.groups[("company", f"g-{run}")] == {"name": "Initech", "employees": 120}
        assert (alias.event, double.aliases) == ("$create_alias", [(user, anon)])
        assert (order.event, order.distinct_id, order.properties["total"]) == ("Order Completed", user, 42.5)
        assert order.uuid == str(uuid.uuid5(NAMESPACE, f"order-{run}"))  # a messageId that is no UUID
        assert abs((parse_iso(old.timestamp) - hour_ago).total_seconds()) < 2

        for request in double.requests:
            assert (request.method, request.path, request.status) == ("POST", "/batch/", 200)
            assert request.headers["Content-Type"] == "application/json"
            assert request.json["api_key"] == API_KEY and request.json["historical_migration"] is False
            assert SOURCE_KEY not in request.body.decode()
        assert not double.warnings and not double.dropped and not double.duplicates
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0


def test_a_400_dead_letters_only_the_refused_event_and_the_rest_is_delivered(collector_factory):
    with ThreadedDouble(PostHogDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        # PostHog refuses a request without saying which event: the first three requests (the
        # batch, its first half, that half's first event) get a 400 as if event 0 were malformed.
        reason = "event submitted without a distinct_id"
        double.fail_next(400, body=reason, times=3)
        client = Client(SOURCE_KEY, host=collector.url, upload_size=4, upload_interval=0.5, max_retries=1)
        for n in range(4):
            client.track("u1", f"Event {n}", {"n": n})
        client.flush()
        client.join()
        wait_until("one event dead-lettered", lambda: collector.metric(
            "collector_dead_lettered_events_total", destination=DESTINATION) == 1)
        wait_until("the others delivered", lambda: collector.metric(
            "collector_delivered_events_total", destination=DESTINATION) == 3)
        assert [[e["properties"]["n"] for e in r.json["batch"]] for r in double.requests] == [
            [0, 1, 2, 3], [0, 1], [0], [1], [2, 3]]
        assert sorted(e.event for e in double.accepted) == ["Event 1", "Event 2", "Event 3"]
        (letter,) = dead_letters(collector.config["storage"]["path"], DESTINATION)
        assert letter["event"]["event"] == "Event 0"
        assert letter["reason"] == f"event (Track Calls): HTTP 400: {reason}"
        assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) == 0


def test_429_503_and_401_are_retried_until_posthog_takes_the_events(collector_factory):
    with ThreadedDouble(PostHogDouble(api_key=API_KEY)) as double:
        collector = collector_factory(collector_config(double))
        client = Client(SOURCE_KEY, host=collector.url, sync_mode=True, max_retries=1)

        double.fail_next(429, headers={"Retry-After": "2"})
        client.track("u1", "After a 429")
        double.wait_for_accepted(1, timeout=10)
        refused, taken = double.requests[0], double.requests[-1]
        assert (refused.status, taken.status, len(double.requests)) == (429, 200, 2)
        assert taken.at - refused.at >= 1.9  # Retry-After: 2, where the backoff alone is 0.1 s

        double.fail_next(503, times=2)
        client.track("u1", "After two 503s")
        double.wait_for_accepted(2, timeout=10)
        assert [r.status for r in double.requests[2:]] == [503, 503, 200]

        double.api_key = "phc_rotated_key"  # the configured key no longer works: 401, and the events wait
        client.track("u1", "While the key is wrong")
        double.wait_for(lambda: len(double.answered(401)) >= 3, timeout=10, what="three 401s")
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
        double.api_key = API_KEY  # the operator puts the key right (here: the project takes it again)
        double.wait_for_accepted(3, timeout=10)
        assert [e.event for e in double.accepted] == ["After a 429", "After two 503s", "While the key is wrong"]
        assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) >= 6
        assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
        assert API_KEY not in collector.logs() and "phc_rotated_key" not in collector.logs()


def test_over_20_mb_of_events_are_cut_into_requests_posthog_accepts(collector_factory):
    with ThreadedDouble(PostHogDouble(api_key=API_KEY)) as double:
        config = collector_config(double, batch={"max_events": 100, "max_bytes": "64MiB", "max_wait": "1s"})
        config["server"] = {"limits": {"max_event_bytes": "1MiB", "max_request_bytes": "32MiB"}}
        collector = collector_factory(config)
        pad = "x" * 850_000
        events = [{"type": "track", "userId": "u1", "event": f"Big {n}", "messageId": f"big-{n}",
                   "properties": {"n": n, "pad": pad}} for n in range(25)]  # 21+ MB
        events.append({"type": "track", "userId": "u1", "event": "Too big", "messageId": "too-big",
                       "properties": {"n": 25, "pad": "é" * 200_000}})  # 400 kB, but 1.2 MB as PostHog counts
        status, _ = post(collector.url, "/v1/batch", {"batch": events}, SOURCE_KEY, timeout=60)
        assert status == 200
        double.wait_for_accepted(25, timeout=30)
        wait_until("the oversized event dead-lettered", lambda: collector.metric(
            "collector_dead_lettered_events_total", destination=DESTINATION) == 1)
        assert all(r.status == 200 for r in double.requests) and len(double.requests) == 2
        assert all(len(r.body) <= 20_000_000 for r in double.requests)
        assert [e.properties["n"] for e in double.accepted] == list(range(25))
        (letter,) = dead_letters(collector.config["storage"]["path"], DESTINATION)
        assert letter["event"]["event"] == "Too big"
        assert "over the 921600 it allows" in letter["reason"]
