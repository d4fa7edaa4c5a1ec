"""End to end: Segment's Python SDK -> the collector process -> the Facebook Conversions API
destination -> the Meta Graph double (tests/vendors/facebook.py), which refuses what Meta refuses
(a whole batch for one event, naming its index) and keeps what Meta keeps."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from segment.analytics.client import Client

from tests.e2e.helpers import dead_letters
from tests.support.waiting import wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.facebook import FacebookDouble

WRITE_KEY = "wk_meta_e2e"
TOKEN = "EAAe2e-system-user-token-5d1c"
PIXEL = "1234567890123456"
AUDIENCE = "23850000000000001"
EVENTS_PATH = f"/v24.0/{PIXEL}/events"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
BROWSER = {"userAgent": USER_AGENT, "page": {"url": "https://shop.example.com/checkout?step=3"}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def double():
    with ThreadedDouble(FacebookDouble(TOKEN, pixel_ids=[PIXEL], audience_ids=[AUDIENCE])) as d:
        yield d


def start(collector_factory, double, monkeypatch, **destination):
    monkeypatch.setenv("META_E2E_TOKEN", TOKEN)
    return collector_factory({
        "storage": {"min_free_bytes": 0},
        "logging": {"level": "warning"},
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {"meta": {
            "type": "facebook_conversions", "pixel_id": PIXEL, "access_token": "${META_E2E_TOKEN}",
            "endpoint": double.url,
            "batch": {"max_events": 100, "max_wait": 0.2},
            "retry": {"initial_backoff": 0.1, "max_backoff": 1},
            **destination,
        }},
    })


def sdk(collector, **options) -> Client:
    errors: list = []
    client = Client(WRITE_KEY, host=collector.url, max_retries=1, timeout=10,
                    on_error=lambda error, batch: errors.append(error), **options)
    client.errors = errors
    return client


def assert_requests_are_the_graph_api(double) -> None:
    for call in double.requests:
        assert call.method in ("POST", "DELETE")
        assert call.path in (EVENTS_PATH, f"/v24.0/{AUDIENCE}/users"), call.path
        assert (call.method, call.path) != ("DELETE", EVENTS_PATH)
        assert call.query == {}  # the token travels in the header, never in a URL
        assert call.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.headers["Content-Type"] == "application/json"


def test_sdk_events_become_meta_server_events_and_audience_changes(collector_factory, double, monkeypatch):
    collector = start(collector_factory, double, monkeypatch, test_event_code="TEST81234",
                      audiences={"vip": AUDIENCE})
    client = sdk(collector, upload_size=100)
    now = datetime.now(timezone.utc)
    calls = [
        client.track("user-1", "Order Completed", {
            "order_id": "o-1001", "revenue": 25, "total": 27.5, "currency": "eur", "fbp": "fb.1.1732800000000.98765",
            "products": [{"product_id": "p1", "price": 19, "quantity": 1}, {"sku": "s2", "price": 3, "quantity": 2}]},
            context={**BROWSER, "traits": {"email": " Ada@Example.com ", "phone": "+44 (0)20 7946 0958"}}),
        client.page("user-1", name="Landing", context={
            "userAgent": USER_AGENT, "page": {"url": "https://shop.example.com/?fbclid=IwAR-click-7"}}),
        client.track("user-3", "Newsletter Subscribed", {"list": "weekly"}),  # from a server: no browser
        client.track("user-4", "Product Viewed", {"sku": "s9", "price": 30}, context=BROWSER,
                     timestamp=now - timedelta(days=8)),  # Meta takes 7 days at most
        client.identify("user-1", {"plan": "pro"}),  # nothing for Meta: counted as unmatched
        client.track("user-5", "Audience Entered", {"audience_key": "vip", "vip": True},
                     context={"traits": {"email": "five@example.com"}}),
        client.track("user-6", "Audience Entered", {"audience_key": "vip", "vip": True},
                     context={"traits": {"email": "six@example.com"}}),
        client.track("user-6", "Audience Exited", {"audience_key": "vip", "vip": False},
                     context={"traits": {"email": "six@example.com"}}),
    ]
    client.flush()
    client.join()
    assert client.errors == [] and all(ok for ok, _ in calls)
    message_ids = [message["messageId"] for _, message in calls]

    double.wait_for_accepted(3, timeout=15)
    wait_until("the audience exit", lambda: any(op == "remove" for _, op, _ in double.audience_operations))
    wait_until("the old event dead-lettered",
               lambda: collector.metric("collector_dead_lettered_events_total", destination="meta") == 1)
    wait_until("the identify counted as unmatched",
               lambda: collector.metric("collector_destination_unmatched_total", destination="meta") == 1)
    assert_requests_are_the_graph_api(double)
    assert {call.json.get("test_event_code") for call in double.requests if call.path == EVENTS_PATH} == {"TEST81234"}

    got = {e.event["event_id"]: e.event for e in double.accepted}
    assert sorted(got) == sorted(message_ids[:3])
    purchase, page, custom = (got[i] for i in message_ids[:3])
    assert abs(purchase["event_time"] - now.timestamp()) < 60
    assert purchase["user_data"] == {
        "em": sha("ada@example.com"), "ph": sha("442079460958"), "external_id": sha("user-1"),
        "client_ip_address": "127.0.0.1", "client_user_agent": USER_AGENT, "fbp": "fb.1.1732800000000.98765"}
    assert {k: purchase[k] for k in ("event_name", "action_source", "event_source_url")} == {
        "event_name": "Purchase", "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout?step=3"}
    assert purchase["custom_data"] == {
        "value": 25, "currency": "EUR", "order_id": "o-1001", "num_items": 3, "content_type": "product",
        "contents": [{"id": "p1", "quantity": 1, "item_price": 19}, {"id": "s2", "quantity": 2, "item_price": 3}]}
    assert page["event_name"] == "PageView"
    assert page["user_data"]["fbc"] == f"fb.1.{page['event_time'] * 1000}.IwAR-click-7"
    assert (custom["event_name"], custom["action_source"], custom["custom_data"]) == (
        "Newsletter Subscribed", "other", {"list": "weekly"})
    assert "event_source_url" not in custom

    (letter,) = dead_letters(collector.config["storage"]["path"], "meta")
    assert letter["event"]["messageId"] == message_ids[3]
    assert letter["reason"].startswith("event (Product Viewed): event_time ")
    assert letter["reason"].endswith("days old; Meta refuses website events more than 7 days old")

    # user-5 and user-6 may travel in two lanes, so in one request or two; user-6 leaves after joining.
    rows = [(audience, operation, row) for audience, operation, data in double.audience_operations for row in data]
    assert sorted((audience, operation) for audience, operation, _ in rows) == [
        (AUDIENCE, "add"), (AUDIENCE, "add"), (AUDIENCE, "remove")]
    six = [sha("user-6"), sha("six@example.com")]
    assert [(operation, row) for _, operation, row in rows if row == six] == [("add", six), ("remove", six)]
    assert double.audiences[AUDIENCE] == {("EMAIL", sha("five@example.com")), ("EXTERN_ID", sha("user-5"))}
    assert TOKEN not in collector.logs()


def test_an_event_meta_refuses_by_index_is_dead_lettered_with_metas_reason_and_the_rest_delivered(
        collector_factory, double, monkeypatch):
    # Meta's clock runs 7 days less half an hour ahead of ours: an event an hour old is too old for
    # Meta, which nothing in the collector can see before Meta says so.
    double.clock = lambda: datetime.now(timezone.utc).timestamp() + 7 * 86400 - 1800
    collector = start(collector_factory, double, monkeypatch, concurrency=1,
                      batch={"max_events": 100, "max_wait": 0.5})
    client = sdk(collector, upload_size=100)
    now = datetime.now(timezone.utc)
    calls = [client.track(f"user-{n}", "Lead Captured", {"n": n}, timestamp=now - timedelta(hours=n % 2))
             for n in range(4)]
    client.flush()
    client.join()
    assert client.errors == []
    ids = [message["messageId"] for _, message in calls]

    wait_until("two dead letters", lambda: collector.metric("collector_dead_lettered_events_total",
                                                            destination="meta") == 2)
    double.wait_for_accepted(2)
    wait_until("two delivered", lambda: collector.metric("collector_delivered_events_total",
                                                         destination="meta") == 2)
    assert sorted(e.event["event_id"] for e in double.accepted) == sorted([ids[0], ids[2]])
    refusals = double.answered(400)
    assert refusals and all("Event at index" in call.answer["error"]["error_user_msg"] for call in refusals)
    for refusal in refusals:  # every event of a refused request other than the one named went again
        named = int(refusal.answer["error"]["error_user_msg"].split("Event at index ")[1].split(":")[0])
        others = [e["event_id"] for i, e in enumerate(refusal.json["data"]) if i != named]
        assert all(any(event_id in [e["event_id"] for e in later.json["data"]] for later in double.requests
                       if later.at >= refusal.at and later is not refusal) for event_id in others)
    letters = {row["event"]["messageId"]: row["reason"] for row in dead_letters(collector.config["storage"]["path"],
                                                                                  "meta")}
    assert sorted(letters) == sorted([ids[1], ids[3]])
    for reason in letters.values():
        assert reason.startswith("event (Custom Events): Meta refused the event: Meta error #100/2804003: "
                                 "Event Timestamp Too Old - Event at index ")
        assert reason.endswith("Events need to be sent from your server within 7 days of when they occurred.")
    assert collector.metric("collector_delivery_retries_total", destination="meta") == 0


def test_a_batch_over_metas_1000_events_is_split_into_requests_of_at_most_1000(collector_factory, double,
                                                                                 monkeypatch):
    collector = start(collector_factory, double, monkeypatch, concurrency=1,
                      batch={"max_events": 2500, "max_bytes": "16MiB", "max_wait": 2})
    client = sdk(collector, upload_size=250)
    for n in range(2100):
        client.page(anonymous_id=f"anon-{n}", name="Home", context=BROWSER)
    client.flush()
    client.join()
    assert client.errors == []
    double.wait_for_accepted(2100, timeout=20)
    # (a request is recorded just after the double has taken its events)
    double.wait_for(lambda: sum(len(call.json["data"]) for call in double.requests) >= 2100, what="2,100 recorded")
    sizes = [len(call.json["data"]) for call in double.requests]
    assert max(sizes) == 1000 and sum(sizes) == 2100 and all(call.status == 200 for call in double.requests)
    assert len({e.event["event_id"] for e in double.accepted}) == 2100 and double.duplicates == []


def test_429_retry_after_rate_limit_codes_5xx_and_a_bad_token_are_retried_until_delivered(collector_factory, double,
                                                                                           monkeypatch):
    collector = start(collector_factory, double, monkeypatch)
    double.fail_next(429, headers={"Retry-After": "1"})
    double.fail_next(400, {"error": {"message": "(#17) User request limit reached", "code": 17}})
    double.fail_next(503)
    double.fail_next(400, {"error": {"message": "Error validating access token: The user has not authorized "
                                                "application 1234.", "type": "OAuthException", "code": 190,
                                     "error_subcode": 458}})
    client = sdk(collector, sync_mode=True)
    client.track("user-r", "Lead Captured", {"n": 7}, context=BROWSER)
    (accepted,) = double.wait_for_accepted(1, timeout=15)
    double.wait_for(lambda: len(double.requests) == 5, what="the accepted request recorded")
    statuses = [call.status for call in double.requests]
    assert statuses == [429, 400, 503, 400, 200]
    first, second = double.requests[:2]
    assert second.at - first.at >= 1.0  # nothing sent before the Retry-After ran out
    assert all(call.json == first.json for call in double.requests)  # the same request, again
    assert accepted.event["custom_data"] == {"n": 7}
    wait_until("the retries counted", lambda: collector.metric("collector_delivery_retries_total",
                                                               destination="meta") == 4)
    assert collector.metric("collector_dead_lettered_events_total", destination="meta") == 0
    logs = collector.logs()
    assert "rate limited (Meta error #17: (#17) User request limit reached)" in logs
    assert ("credentials refused (Meta error #190/458: Error validating access token: The user has not authorized "
            "application 1234.); check the destination's access_token") in logs
    assert TOKEN not in logs
