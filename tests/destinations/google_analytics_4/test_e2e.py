"""End to end: Segment's Python SDK -> the collector process -> the GA4 destination -> the GA4
double (tests/vendors/ga4.py). The double answers 204 to everything, as GA4 does, and records
what GA4 would silently drop (``invalid``): it must stay empty, because such events are
dead-lettered with their reason instead."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from segment.analytics.client import Client

from tests.e2e.helpers import dead_letters
from tests.support.waiting import wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.ga4 import GA4Double

WRITE_KEY = "wk_ga4_e2e"
SECRET = "e2e-api-secret-7f3a"
MEASUREMENT_ID = "G-E2ETEST01"


@pytest.fixture
def double():
    with ThreadedDouble(GA4Double(api_secret=SECRET, measurement_id=MEASUREMENT_ID)) as d:
        yield d


def start(collector_factory, double, max_wait: float = 0.05):
    return collector_factory({
        "storage": {"min_free_bytes": 0},
        "logging": {"level": "warning"},
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {"ga4": {
            "type": "google_analytics_4", "measurement_id": MEASUREMENT_ID, "api_secret": SECRET,
            "endpoint": double.url,
            "batch": {"max_events": 100, "max_wait": max_wait},
            "retry": {"initial_backoff": 0.1, "max_backoff": 1},
            "mappings": [{"name": "Custom Event", "fields": {"params": {"n": {"@path": "$.properties.n"}}}}],
        }},
    })


def sdk(collector, **options) -> Client:
    errors: list = []
    client = Client(WRITE_KEY, host=collector.url, max_retries=1, timeout=10,
                    on_error=lambda error, batch: errors.append(error), **options)
    client.errors = errors
    return client


def assert_requests_are_the_measurement_protocol(double) -> None:
    for call in double.requests:
        assert (call.method, call.path) == ("POST", "/mp/collect")
        assert call.query == {"measurement_id": MEASUREMENT_ID, "api_secret": SECRET}
        assert call.headers["Content-Type"] == "application/json"


def test_sdk_events_reach_ga4_batched_per_client_and_what_ga4_would_drop_is_dead_lettered(collector_factory, double):
    collector = start(collector_factory, double, max_wait=0.5)
    client = sdk(collector, upload_size=100)
    for n in range(30):
        client.track(anonymous_id="anon-A", event="Video Played", properties={"n": n})
    client.track("user-1", "Order Completed", anonymous_id="anon-B", properties={
        "order_id": "o-1001", "total": 27.5, "revenue": 25, "currency": "eur", "coupon": "SPRING",
        "products": [{"product_id": "p1", "name": "Monopoly", "price": 19, "quantity": 1},
                     {"sku": "s2", "name": "Uno", "price": 3.25, "quantity": 2}]})
    client.page(anonymous_id="anon-B", name="Pricing", context={"page": {
        "url": "https://shop.example/pricing", "title": "Pricing", "referrer": "https://www.google.com/"}})
    # What GA4 would take with a 204 and then drop:
    client.track(anonymous_id="anon-C", event="session start", properties={"n": 1})  # a reserved name
    client.track(anonymous_id="anon-C", event="???", properties={"n": 2})  # nothing valid in the name
    client.track(anonymous_id="anon-C", event="Late", properties={"n": 3},
                 timestamp=datetime.now(timezone.utc) - timedelta(days=4))  # beyond the 72 hours
    client.identify("user-1", {"plan": "pro"})  # no preset takes it: counted as unmatched, not sent
    client.flush()
    client.join()
    assert client.errors == []

    wait_until("3 dead letters", lambda: collector.metric("collector_dead_lettered_events_total",
                                                          destination="ga4") == 3)
    double.wait_for_accepted(32)
    wait_until("the identify counted as unmatched",
               lambda: collector.metric("collector_destination_unmatched_total", destination="ga4") == 1)
    assert double.invalid == []
    assert_requests_are_the_measurement_protocol(double)

    # One client's 30 events: 25, then 5, in order.
    per_client = [(c.json["client_id"], [e["params"].get("n") for e in c.json["events"]]) for c in double.requests
                  if c.json["client_id"] == "anon-A"]
    assert per_client == [("anon-A", list(range(25))), ("anon-A", list(range(25, 30)))]
    got = {e.name: e for e in double.accepted if e.client_id == "anon-B"}
    assert sorted(got) == ["page_view", "purchase"]
    purchase = got["purchase"]
    assert purchase.user_id == "user-1"
    assert purchase.params == {
        "transaction_id": "o-1001", "value": 27.5, "currency": "EUR", "coupon": "SPRING", "engagement_time_msec": 1,
        "items": [{"item_id": "p1", "item_name": "Monopoly", "price": 19, "quantity": 1},
                  {"item_id": "s2", "item_name": "Uno", "price": 3.25, "quantity": 2}]}
    assert abs(purchase.timestamp_micros / 1e6 - datetime.now(timezone.utc).timestamp()) < 60
    assert got["page_view"].params == {"page_location": "https://shop.example/pricing", "page_title": "Pricing",
                                       "page_referrer": "https://www.google.com/", "engagement_time_msec": 1}

    letters = {row["event"]["event"]: row["reason"] for row in dead_letters(collector.config["storage"]["path"], "ga4")}
    assert letters == {
        "session start": "custom_event (Custom Event): the event name 'session_start' is reserved by GA4",
        "???": "custom_event (Custom Event): the event name '???' has no character GA4 accepts "
               "([A-Za-z][A-Za-z0-9_]*)",
        "Late": letters["Late"],
    }
    assert letters["Late"].endswith("is more than 72 hours old; GA4 drops such events")
    assert SECRET not in collector.logs()


def test_a_429_pauses_for_its_retry_after_and_a_5xx_is_retried(collector_factory, double):
    collector = start(collector_factory, double)
    double.fail_next(429, headers={"Retry-After": "1"})
    double.fail_next(503)
    client = sdk(collector, sync_mode=True)
    client.track(anonymous_id="anon-R", event="Video Played", properties={"n": 7})
    accepted = double.wait_for_accepted(1, timeout=15)
    first, second, third = double.requests[:3]
    assert [c.status for c in (first, second, third)] == [429, 503, 204]
    assert second.at - first.at >= 1.0  # nothing sent before the Retry-After ran out
    assert all(c.json == first.json for c in (second, third))  # the same request, again
    assert [(e.name, e.params["n"]) for e in accepted] == [("Video_Played", 7)]
    wait_until("the retries counted", lambda: collector.metric("collector_delivery_retries_total",
                                                               destination="ga4") >= 2)
    assert collector.metric("collector_dead_lettered_events_total", destination="ga4") == 0
    assert len(double.accepted) == 1 and double.invalid == []
