"""End to end: Segment's Python SDK sends to the real collector process, whose mixpanel destination
sends to the Mixpanel double (tests/vendors/mixpanel.py) through the real dispatcher.

1. A backlog of 2,058 events (stored while the destination was off) is sent: /import requests of
   at most 2,000 events, gzipped, Basic auth, strict=1; two events Mixpanel refuses are
   dead-lettered with Mixpanel's message while every other one is delivered exactly once (no
   bisection); identify, group, alias, page, screen and an order reach their endpoints.
2. A 401 (rotated secret), a 429 without Retry-After, a 503 with Retry-After and a 500: the event
   waits, each pause is kept, and it is delivered once in the end, nothing dead-lettered.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from pathlib import Path

import pytest
from segment.analytics.client import Client

from tests.e2e.helpers import FAST_BATCH, STORAGE, dead_letters
from tests.support.process import CollectorProcess
from tests.support.waiting import wait_until
from tests.vendors.base import ThreadedDouble
from tests.vendors.mixpanel import MixpanelDouble

from .expected import SECRET, TOKEN

WRITE_KEY = "wk_mixpanel_e2e"
BASIC = "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()
ALIAS_MAPPING = {"name": "Alias Calls", "action": "alias", "trigger": 'type = "alias"'}


def collector_config(double: ThreadedDouble, **destination: object) -> dict:
    return {
        "storage": STORAGE,
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {"mixpanel": {
            "type": "mixpanel", "project_token": TOKEN, "api_secret": SECRET, "endpoint": double.url,
            "concurrency": 1, "mappings": [ALIAS_MAPPING], **destination}},
    }


@pytest.fixture
def double():
    with ThreadedDouble(MixpanelDouble(api_secret=SECRET, project_token=TOKEN, accept_token_auth=False)) as running:
        yield running


@pytest.fixture
def processes():
    started: list[CollectorProcess] = []
    yield started
    for process in started:
        if process.alive:
            try:
                process.stop(timeout=20)
            except Exception:
                process.kill()


def run(processes: list[CollectorProcess], directory: Path, config: dict) -> CollectorProcess:
    process = CollectorProcess(directory, config).start()
    processes.append(process)
    return process


def sdk(collector: CollectorProcess, errors: list[str]) -> Client:
    return Client(WRITE_KEY, host=collector.url, sync_mode=False, upload_size=100, max_queue_size=5000,
                  max_retries=2, on_error=lambda error, batch: errors.append(f"{error!r}: {len(batch)} events"))


def test_a_backlog_is_sent_in_requests_of_2000_and_refused_events_alone_are_dead_lettered(double, processes, tmp_path):
    # 1. The destination is off while the SDK sends: the events wait in the log.
    collector = run(processes, tmp_path, collector_config(double, enabled=False))
    errors: list[str] = []
    client = sdk(collector, errors)
    user, anonymous = "user-e2e", str(uuid.uuid4())
    sent = [
        client.identify(user, {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"},
                        anonymous_id=anonymous),
        *(client.track(user, "Item Viewed", {"n": n}, anonymous_id=anonymous) for n in range(2050)),
        client.track(user, "Order Completed", {"order_id": "o-1", "total": 12.5, "products": [
            {"product_id": "p1", "price": 10, "quantity": 1}, {"product_id": "p2", "price": 2.5, "quantity": 1}]},
                     anonymous_id=anonymous),
        client.page(user, name="Pricing", properties={"path": "/pricing"}, anonymous_id=anonymous),
        client.screen(user, name=None, properties={"variant": "B"}, anonymous_id=anonymous),
        client.group(user, "g-42", {"name": "Initech", "employees": 120}, anonymous_id=anonymous),
        client.alias(anonymous, user),
        # Refused by Mixpanel: a placeholder distinct_id, and 300 properties.
        client.track("anonymous", "Placeholder", {}, anonymous_id=None),
        client.track(user, "Too Wide", {f"p{i}": i for i in range(300)}, anonymous_id=anonymous),
    ]
    client.flush()
    client.join()
    assert errors == [] and all(ok for ok, _ in sent)
    messages = [message for _, message in sent]
    wait_until("every event stored", lambda: collector.metric("collector_events_committed_total") == len(messages))
    collector.stop()

    # 2. The destination comes on and takes the backlog from the start: one batch of 2,058 events.
    collector = run(processes, tmp_path, collector_config(
        double, start_from="earliest", batch={**FAST_BATCH, "max_events": 5000, "max_bytes": "16MiB"},
        retry={"initial_backoff": 0.2, "max_backoff": 1}))
    delivered = len(messages) - 2
    wait_until("the backlog delivered", lambda: collector.metric(
        "collector_delivered_events_total", destination="mixpanel") == delivered, timeout=30)
    wait_until("the two refused events dead-lettered", lambda: collector.metric(
        "collector_dead_lettered_events_total", destination="mixpanel") == 2)

    imports = [r for r in double.requests if r.path == "/import"]
    for request in imports:
        assert (request.method, request.query) == ("POST", {"strict": "1"})
        assert request.headers["Authorization"] == BASIC
        assert (request.headers["Content-Type"], request.headers["Content-Encoding"]) == ("application/json", "gzip")
        assert json.loads(gzip.decompress(request.body)) == request.json
        assert len(request.json) <= 2000 and len(request.decoded) <= 10_000_000
    # The track preset's 2,052 events: 2,000 and 52, each sent once; Mixpanel refused two of them.
    tracks = [r for r in imports if r.json[0]["event"] in ("Item Viewed", "Placeholder", "Too Wide")]
    assert sorted(len(r.json) for r in tracks) == [52, 2000]
    assert sorted(r.status for r in tracks) == [200, 400]
    viewed = [e for e in double.imported if e["event"] == "Item Viewed"]
    assert sorted(e["properties"]["n"] for e in viewed) == list(range(2050)) and double.duplicates == []

    by_id = {m["messageId"]: m for m in messages}
    for event in viewed[:3]:
        properties = event["properties"]
        message = by_id[properties["$insert_id"]]  # analytics-python's messageIds are UUIDs: kept as they are
        assert (properties["distinct_id"], properties["$user_id"], properties["$device_id"]) == (user, user, anonymous)
        assert properties["mp_lib"] == "analytics-python" and properties["ip"] == "127.0.0.1"
        assert message["event"] == "Item Viewed" and message["properties"]["n"] == properties["n"]

    rows = dead_letters(tmp_path / "data", "mixpanel")
    reasons = {row["event"]["event"]: row["reason"] for row in rows}
    assert reasons == {
        "Placeholder": "track_event (Track Calls): Mixpanel refused the event: 'properties.distinct_id' is invalid: "
                       "'anonymous' is a placeholder",
        "Too Wide": "track_event (Track Calls): Mixpanel refused the event: properties: an event must have fewer "
                    "than 255 properties",
    }

    # The other calls, each at its endpoint.
    names = [e["event"] for e in double.imported]
    assert names.count("Order Completed") == 1 and names.count("Product Purchased") == 2
    assert {"Viewed Pricing", "Loaded a Screen", "$identify", "$create_alias"} <= set(names)
    assert [e["properties"]["$anon_id"] for e in double.identifies] == [anonymous]
    assert [(a["properties"]["distinct_id"], a["properties"]["alias"]) for a in double.aliases] == [(anonymous, user)]
    assert double.profiles == {user: {"$email": "ada@example.com", "$first_name": "Ada", "$last_name": "Lovelace",
                                      "$name": "Ada Lovelace"}}
    assert double.profile_updates[0]["$ip"] == "127.0.0.1"
    assert double.groups == {("$group_id", "g-42"): {"$name": "Initech", "employees": 120}}


def test_401_429_503_and_500_are_retried_with_their_pauses_and_delivered_once(double, processes, tmp_path):
    double.api_secret = "rotated"  # the collector's secret is refused until the operator fixes it
    collector = run(processes, tmp_path, collector_config(
        double, batch=FAST_BATCH, retry={"initial_backoff": 0.2, "max_backoff": 1}))
    errors: list[str] = []
    client = sdk(collector, errors)
    ok, message = client.track("user-1", "Signed Up", {"plan": "pro"})
    client.flush()
    client.join()
    assert ok and errors == []
    wait_until("a 401", lambda: double.answered(401))
    wait_until("the event retried for its credentials",
               lambda: collector.metric("collector_delivery_retries_total", destination="mixpanel") >= 1)
    double.fail_next(429, path="/import")  # Mixpanel's 429 has no Retry-After
    double.fail_next(503, headers={"Retry-After": "2"}, path="/import")
    double.fail_next(500, path="/import")
    double.api_secret = SECRET  # fixed
    wait_until("the event delivered", lambda: collector.metric(
        "collector_delivered_events_total", destination="mixpanel") == 1, timeout=20)

    statuses = [r.status for r in double.requests]
    first = statuses.index(429)
    assert set(statuses[:first]) == {401} and statuses[first:] == [429, 503, 500, 200]
    assert {r.json[0]["properties"]["$insert_id"] for r in double.requests} == {message["messageId"]}
    at = [r.at for r in double.requests[first:]]
    assert at[1] - at[0] >= 0.2 - 0.05  # no Retry-After: the destination pauses for its initial backoff
    assert at[2] - at[1] >= 2 - 0.05    # Retry-After: 2 honoured
    assert [e["event"] for e in double.accepted] == ["Signed Up"]
    assert collector.metric("collector_dead_lettered_events_total", destination="mixpanel") == 0
    assert dead_letters(tmp_path / "data", "mixpanel") == []
    assert "credentials refused" in collector.logs()
