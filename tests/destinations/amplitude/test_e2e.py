"""End to end: Segment's Python SDK -> the collector process -> the amplitude destination -> the
Amplitude double, with the real dispatcher deciding what is delivered, retried and dead-lettered."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from segment.analytics.client import Client
from segment.analytics.request import DatetimeSerializer

from collector.destinations.amplitude.presets import ALIAS_MAPPING, GROUP_MAPPING
from tests.e2e.helpers import dead_letters
from tests.support.waiting import wait_until
from tests.vendors.amplitude import AmplitudeDouble
from tests.vendors.base import ThreadedDouble

WRITE_KEY = "wk_amplitude_e2e"
API_KEY = "amp-key-e2e-31f6"
FORMS = {"/identify", "/groupidentify", "/usermap"}


@pytest.fixture
def double():
    with ThreadedDouble(AmplitudeDouble(api_key=API_KEY)) as amplitude:
        yield amplitude


def config(double: Any, **destination: Any) -> dict:
    return {
        "storage": {"min_free_bytes": 0},
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {"amp": {
            "type": "amplitude", "api_key": API_KEY, "endpoint": double.url,
            "retry": {"initial_backoff": 0.1, "max_backoff": 0.5},
            "mappings": [GROUP_MAPPING, ALIAS_MAPPING], **destination,
        }},
    }


def wire(message: dict) -> dict:
    return json.loads(json.dumps(message, cls=DatetimeSerializer))


def ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def sent(client: Client, calls: list[tuple[bool, dict]]) -> list[dict]:
    client.flush()
    client.join()
    assert all(ok for ok, _ in calls)
    return [wire(message) for _, message in calls]


def uploads(double: Any) -> list[Any]:
    return [call for call in double.requests if call.path in ("/2/httpapi", "/batch")]


def test_sdk_calls_arrive_as_amplitude_records_and_a_large_backlog_is_cut_at_2000_events(collector_factory, double):
    # One lane, and the first requests held up at Amplitude: the orders pile up in the log and the
    # next batch holds more of them than one Amplitude request may carry.
    collector = collector_factory(config(double, concurrency=1, batch={"max_events": 4000, "max_bytes": "16MiB",
                                                                        "max_wait": 0.2}))
    double.delay = 1.0
    run = uuid.uuid4().hex[:6]
    user, anon = f"user-{run}", f"anon-{run}"
    client = Client(WRITE_KEY, host=collector.url, upload_size=500, max_retries=2)
    campaign = {"source": "newsletter", "medium": "email", "name": "spring"}
    calls = [
        client.identify(user, {"email": "ada@example.com", "plan": "pro"}, anonymous_id=anon),
        client.track(user, "Signed Up", {"method": "email"}, anonymous_id=anon, context={"campaign": campaign},
                     integrations={"Actions Amplitude": {"session_id": 1732800000000}}),
        client.page(user, "Docs", "Quick start", {"path": "/docs"}, anonymous_id=anon),
        client.screen(user, name="Home", anonymous_id=anon),
        client.group(user, f"acme-{run}", {"name": "Acme", "seats": 12}, anonymous_id=anon),
        client.alias(f"old-{run}", user),
    ]
    orders = [client.track(user, "Order Completed", {
        "order_id": f"o{n}", "revenue": 10.0 + n, "currency": "EUR",
        "products": [{"product_id": f"p{n}-{k}", "price": 2.5, "quantity": k + 1} for k in range(2)]},
        anonymous_id=anon) for n in range(1200)]
    messages = sent(client, calls + orders)
    wait_until("the events to be committed",
               lambda: collector.metric("collector_events_committed_total", source="app") >= len(messages))
    double.delay = 0.0
    wait_until("every event delivered",
               lambda: collector.metric("collector_delivered_events_total", destination="amp") >= len(messages),
               timeout=30)
    identify, signed_up, page, screen, group, alias = messages[:6]

    for call in double.requests:
        assert call.method == "POST" and call.status == 200, (call.path, call.status, call.answer)
        if call.path in FORMS:
            assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert call.form["api_key"] == API_KEY
        else:
            assert (call.path, call.headers["Content-Type"]) == ("/2/httpapi", "application/json")
            assert call.json["api_key"] == API_KEY and set(call.json) == {"api_key", "events"}
            assert len(call.json["events"]) <= 2000 and len(call.decoded) <= 1_000_000
    events = [e for call in uploads(double) for e in call.json["events"]]
    by_insert_id = {e["insert_id"]: e for e in events}
    assert len(by_insert_id) == len(events) == 3 + 3 * 1200  # every event once

    event = by_insert_id[signed_up["messageId"]]
    assert (event["user_id"], event["device_id"], event["event_type"], event["session_id"]) == (
        user, anon, "Signed Up", 1732800000000)
    assert abs(event["time"] - ms(signed_up["timestamp"])) < 15_000  # the collector corrects the clock skew
    assert (event["event_properties"], event["library"]) == ({"method": "email"}, "analytics-python")
    assert event["user_properties"] == {
        "$set": {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"},
        "$setOnce": {"initial_utm_source": "newsletter", "initial_utm_medium": "email",
                     "initial_utm_campaign": "spring"}}
    assert by_insert_id[page["messageId"]]["event_type"] == "Viewed Quick start"
    assert by_insert_id[page["messageId"]]["event_properties"] == {"path": "/docs"}
    assert by_insert_id[screen["messageId"]]["event_type"] == "Viewed Home"

    first = orders[0][1]["messageId"]
    order, product_1, product_2 = (by_insert_id[first], by_insert_id[f"{first}-2"], by_insert_id[f"{first}-3"])
    assert (order["event_type"], order["revenue"], order["revenueType"]) == ("Order Completed", 10.0, "Purchase")
    assert "products" not in order["event_properties"]
    assert [p["event_type"] for p in (product_1, product_2)] == ["Product Purchased"] * 2
    assert product_2["event_properties"] == {"product_id": "p0-1", "price": 2.5, "quantity": 2}
    # The backlog's batch held more than 2,000 events: cut at the last whole order under the limit.
    sizes = [len(call.json["events"]) for call in uploads(double)]
    assert 1998 in sizes, sizes
    for call in uploads(double):  # an order and its products always travel together
        ids = {e["insert_id"] for e in call.json["events"]}
        assert all({f"{e['insert_id']}-2", f"{e['insert_id']}-3"} <= ids
                   for e in call.json["events"] if e["event_type"] == "Order Completed")

    assert double.identifications[0] == {"user_id": user, "device_id": anon,
                                         "user_properties": {"email": "ada@example.com", "plan": "pro"},
                                         "library": "analytics-python"}
    assert json.loads(next(c for c in double.requests if c.path == "/identify").form["identification"])[0][
        "user_id"] == identify["userId"]
    assert double.identifications[1]["groups"] == {"[Segment] Group": group["groupId"]}
    assert double.group_identifications == [{"group_type": "[Segment] Group", "group_value": group["groupId"],
                                             "group_properties": {"name": "Acme", "seats": 12},
                                             "library": "analytics-python"}]
    assert double.user_mappings == [{"user_id": alias["previousId"], "global_user_id": user}]
    assert collector.metric("collector_dead_lettered_events_total", destination="amp") == 0
    assert collector.metric("collector_delivery_retries_total", destination="amp") == 0


def test_refused_throttled_and_failed_requests_through_the_dispatcher(collector_factory, double):
    collector = collector_factory(config(double, concurrency=1, batch={"max_events": 100, "max_wait": 0.3}))
    double.throttle(users=("user-throttled",))
    double.fail_next(503, {"code": 503, "error": "upstream busy"}, path="/2/httpapi")
    client = Client(WRITE_KEY, host=collector.url, upload_size=100, max_retries=2)
    messages = sent(client, [
        client.track("user-ok-1", "Played", {"n": 1}),
        client.track("abc", "Played", {"n": 2}),  # too short a user_id for Amplitude
        client.track("user-throttled", "Played", {"n": 3}),
        client.track("user-ok-2", "Played", {"n": 4}),
        client.identify("xyz", {"plan": "free"}),  # too short for /identify
        client.identify("user-ok-3", {"plan": "pro"}),
    ])
    ids = [m["messageId"] for m in messages]

    def accepted() -> list[str]:
        return [e["insert_id"] for e in double.accepted]

    wait_until("the others delivered while one user is throttled", lambda: {ids[0], ids[3]} <= set(accepted()))
    wait_until("the throttled user's event refused twice",
               lambda: sum(ids[2] in [e["insert_id"] for e in c.json["events"]] for c in double.answered(429)) >= 2)
    assert ids[2] not in accepted()
    double.clear_throttles()
    wait_until("the throttled user's event delivered", lambda: ids[2] in accepted(), timeout=15)
    wait_until("two events dead-lettered",
               lambda: collector.metric("collector_dead_lettered_events_total", destination="amp") == 2)

    assert sorted(accepted()) == sorted([ids[0], ids[2], ids[3]])  # each once: nothing of a refused request counts
    assert [call.status for call in uploads(double)][:2] == [503, 400]
    assert 429 in [call.status for call in double.requests]
    refused = next(call for call in double.requests if call.status == 400 and call.path == "/2/httpapi")
    resent = double.requests[double.requests.index(refused) + 1]
    assert [e["insert_id"] for e in resent.json["events"]] == [ids[0], ids[2], ids[3]]  # sent again at once
    rows = dead_letters(collector.config["storage"]["path"], "amp")
    letters = {row["event"]["messageId"]: row["reason"] for row in rows}
    assert letters == {
        ids[1]: "log_event (Track Calls): Amplitude refused the event 'Played' (HTTP 400): "
                "events_with_invalid_id_lengths: user_id",
        ids[4]: "identify_user (Identify Calls): Amplitude refused it (HTTP 400): an identification needs a user_id "
                "or device_id of at least 5 characters",
    }
    assert [i["user_id"] for i in double.identifications] == ["user-ok-3"]
    assert collector.metric("collector_delivered_events_total", destination="amp") == 4


def test_a_retry_after_pauses_the_destination_that_long(collector_factory, double):
    collector = collector_factory(config(double, batch={"max_wait": 0.05}))
    double.fail_next(429, headers={"Retry-After": "2"})
    client = Client(WRITE_KEY, host=collector.url, sync_mode=True)
    ok, message = client.track("user-patient", "Waited", {"n": 1})
    assert ok
    wait_until("the event delivered", lambda: [e["insert_id"] for e in double.accepted] == [message["messageId"]],
               timeout=15)
    throttled, delivered = double.requests
    assert (throttled.status, delivered.status) == (429, 200)
    assert delivered.at - throttled.at >= 1.9
    assert collector.metric("collector_delivery_retries_total", destination="amp") >= 1


def test_the_api_key_never_reaches_the_logs_or_the_dead_letters(collector_factory, double):
    collector = collector_factory(config(double, batch={"max_wait": 0.05}, api_key="wrong-key-51f0",
                                         retry={"initial_backoff": 0.1, "max_backoff": 0.2, "give_up_after": 1}))
    client = Client(WRITE_KEY, host=collector.url, sync_mode=True)
    assert client.track("user-1", "Refused", {})[0]
    wait_until("the event given up on",
               lambda: collector.metric("collector_dead_lettered_events_total", destination="amp") == 1, timeout=15)
    (letter,) = dead_letters(collector.config["storage"]["path"], "amp")
    assert "credentials refused (HTTP 400: Invalid API key); check the destination's api_key" in letter["reason"]
    assert double.answered(400)[0].answer["error"] == "Invalid API key: wrong-key-51f0"
    time.sleep(0.2)
    assert "wrong-key-51f0" not in letter["reason"] and "wrong-key-51f0" not in collector.logs()
