"""Segment's real client libraries against the running collector, forwarding through a `segment`
destination to a local Segment-compatible receiver: every event arrives exactly once, as the SDK
built it, with the server's fields added, and the collector authenticates with its own key."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from segment.analytics.client import Client
from segment.analytics.request import DatetimeSerializer

from tests.support.receiver import Receiver

from .helpers import FAST_BATCH, STORAGE, basic, by_message_id, received_events, request_json, wait_for_events, wait_until

SOURCE_KEY = "wk_sdk_source"
DEST_KEY = "wk_downstream_segment"
NODE_PROJECT = Path(__file__).resolve().parent / "node"
NODE_SDK = NODE_PROJECT / "node_modules" / "@segment" / "analytics-node" / "package.json"


def collector_config(receiver: Receiver, dest_gzip: bool = False) -> dict:
    return {
        "storage": STORAGE,
        "sources": {"app": {"write_key": SOURCE_KEY}},
        "destinations": {
            "downstream": {
                "type": "segment",
                "endpoint": receiver.url,
                "write_key": DEST_KEY,
                "gzip": dest_gzip,
                "batch": {**FAST_BATCH, "max_events": 3},  # several requests per run
            }
        },
    }


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_delivered_exactly_once(
    collector, receiver: Receiver, sent: list[dict], library: str, started: datetime, dest_gzip: bool
) -> None:
    """``sent``: the events as the SDK put them on the wire (JSON-decoded)."""
    ids = [e["messageId"] for e in sent]
    assert len(set(ids)) == len(ids) == len(sent), "the SDK sent duplicate messageIds?"
    received = wait_for_events(receiver, len(sent), timeout=30)
    # Nothing still on its way: the collector counts every event as delivered, none retried.
    wait_until(
        "the collector to count every event delivered",
        lambda: collector.metric("collector_delivered_events_total", destination="downstream") >= len(sent),
    )
    assert collector.metric("collector_delivery_retries_total", destination="downstream") == 0
    counts = by_message_id(received_events(receiver))
    assert counts == {i: 1 for i in ids}, f"not exactly once: {counts}"
    finished = datetime.now(timezone.utc)

    got = {e["messageId"]: e for e in received}
    for event in sent:
        out = got[event["messageId"]]
        # Every field the SDK sent arrives unchanged, except the three the server owns.
        for key, value in event.items():
            if key in ("timestamp", "sentAt", "context"):
                continue
            assert out.get(key, "<absent>") == value, f"{event['type']} {key}: sent {value!r}, got {out.get(key)!r}"
        assert out["context"] == {**event["context"], "ip": "127.0.0.1"}, out["context"]
        assert out["context"]["library"]["name"] == library
        assert "writeKey" not in out
        # Server fields.
        received_at = parse_iso(out["receivedAt"])
        assert started - timedelta(milliseconds=5) <= received_at <= finished, out["receivedAt"]
        assert out["originalTimestamp"] == event["timestamp"]
        corrected = parse_iso(out["timestamp"])
        lag = (received_at - corrected).total_seconds()
        client_age = (started - parse_iso(event["timestamp"])).total_seconds()
        # timestamp = receivedAt - (sentAt - originalTimestamp): same clock here, so the corrected
        # timestamp is the client's one, give or take the SDK's own batching delay.
        assert client_age - 1 <= lag <= client_age + 15, (event["timestamp"], out["timestamp"], out["receivedAt"])

    # One timestamped event was made a minute in the past: the correction kept that minute.
    old = [e for e in sent if (e.get("properties") or {}).get("minute_ago")]
    assert len(old) == 1
    out = got[old[0]["messageId"]]
    assert 59 <= (parse_iso(out["receivedAt"]) - parse_iso(out["timestamp"])).total_seconds() <= 75

    # The collector talked to the receiver as a Segment client: its OWN key, /v1/batch, batch body.
    requests = receiver.requests
    assert len(requests) >= 2
    for request in requests:
        assert (request.method, request.path) == ("POST", "/v1/batch")
        assert request.headers.get("Authorization") == basic(DEST_KEY)
        assert (request.headers.get("Content-Encoding") == "gzip") is dest_gzip
        body = request_json(request)
        assert SOURCE_KEY not in json.dumps(body), "the source's write key leaked downstream"
        assert isinstance(body["batch"], list) and body["batch"] and "writeKey" not in body
        assert parse_iso(body["sentAt"]) >= started - timedelta(milliseconds=5)


# -- analytics-python ---------------------------------------------------------------------------


def python_sdk_calls(client: Client, run: str) -> list[dict]:
    user, anon = f"py-user-{run}", f"py-anon-{run}"
    calls = [
        client.identify(user, {"email": "ada@example.com", "plan": "pro", "logins": 3}, anonymous_id=anon),
        client.track(user, "Order Completed", {"orderId": f"o-{run}", "total": 42.5, "items": [{"sku": "a", "qty": 2}]}),
        client.track(anonymous_id=anon, event="Anonymous Thing", properties={"nested": {"deep": [1, None, True]},
                                                                             "ünïcode": "ça va ✓"}),
        client.page(user, category="Docs", name="Quick start", properties={"path": "/docs/quick-start"}),
        client.screen(user, name="Home", properties={"variant": "B"}),
        client.group(user, f"g-{run}", {"name": "Initech", "employees": 120}),
        client.alias(anon, user),
        client.track(user, "Old Event", {"minute_ago": True}, timestamp=datetime.now(timezone.utc) - timedelta(minutes=1)),
        client.track(user, "With Context", {"n": 1}, context={"app": {"name": "shop", "version": "1.2"}},
                     integrations={"All": True, "Mixpanel": False}),
    ]
    sent = []
    for ok, message in calls:
        assert ok
        sent.append(json.loads(json.dumps(message, cls=DatetimeSerializer)))
    return sent


@pytest.mark.parametrize(
    ("sdk_gzip", "sync_mode"),
    [(False, True), (True, True), (False, False), (True, False)],
    ids=["plain-sync", "gzip-sync", "plain-batched", "gzip-batched"],
)
def test_analytics_python(collector_factory, receiver: Receiver, sdk_gzip: bool, sync_mode: bool) -> None:
    dest_gzip = sdk_gzip  # exercise the destination's gzip too, once each way
    collector = collector_factory(collector_config(receiver, dest_gzip))
    errors: list[str] = []
    client = Client(
        SOURCE_KEY, host=collector.url, gzip=sdk_gzip, sync_mode=sync_mode, max_retries=2, timeout=10,
        upload_size=4, on_error=lambda error, batch: errors.append(f"{error!r}: {len(batch)} events"),
    )
    started = datetime.now(timezone.utc)
    sent = python_sdk_calls(client, uuid.uuid4().hex[:8])
    if not sync_mode:  # (join() crashes in sync mode: the SDK starts no consumer threads there)
        client.flush()
        client.join()
    assert errors == []
    assert_delivered_exactly_once(collector, receiver, sent, "analytics-python", started, dest_gzip)
    assert all(e["context"]["library"]["version"] for e in received_events(receiver))
    assert collector.metric("collector_events_committed_total", source="app") == len(sent)


# -- @segment/analytics-node -------------------------------------------------------------------


def ensure_node_sdk() -> None:
    if NODE_SDK.is_file():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed to install @segment/analytics-node for this test (apt-get install npm)"
    subprocess.run(
        [npm, "ci", "--prefix", str(NODE_PROJECT), "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_PROJECT, check=True, timeout=300,
    )
    assert NODE_SDK.is_file()


def test_analytics_node(collector_factory, receiver: Receiver) -> None:
    ensure_node_sdk()
    node = shutil.which("node") or "/usr/bin/node"
    collector = collector_factory(collector_config(receiver))
    started = datetime.now(timezone.utc)
    run = subprocess.run(
        [node, str(NODE_PROJECT / "send.js"), collector.url, SOURCE_KEY, uuid.uuid4().hex[:8]],
        capture_output=True, text=True, timeout=60, cwd=NODE_PROJECT,
    )
    assert run.returncode == 0, f"node SDK failed: {run.stderr}\n{collector.logs()[-3000:]}"
    sent = json.loads(run.stdout)
    assert sorted(e["type"] for e in sent) == sorted(
        ["identify", "track", "track", "page", "screen", "group", "alias", "track"]
    )
    assert all(e["messageId"].startswith("node-next-") for e in sent)
    assert_delivered_exactly_once(collector, receiver, sent, "@segment/analytics-node", started, dest_gzip=False)
    version = json.loads(NODE_SDK.read_text())["version"]
    assert {e["context"]["library"]["version"] for e in received_events(receiver)} == {version}
    assert collector.metric("collector_events_committed_total", source="app") == len(sent)
