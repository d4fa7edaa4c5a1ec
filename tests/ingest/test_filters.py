"""Source filters end to end, against the real collector process: a tracking plan and PII rules
on one source, what its batches and single events store (read back from a `file` destination),
what the client is answered, and the metrics; a source without filters is left alone."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Iterator

import pytest
import requests

from tests.ingest.test_routes import Archive, file_destination
from tests.support.process import CollectorProcess

SHOP, OPEN = "wk_shop", "wk_open"
CARD = "4111 1111 1111 1111"
CONFIG = {
    "tracking_plans": {
        "shop": {
            "unplanned_events": "block",
            "violations": "flag",
            "events": {
                "Order Completed": {
                    "type": "object",
                    "required": ["order_id", "total"],
                    "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}},
                },
                "Sentinel": None,
            },
            "identify": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}},
        },
    },
    "sources": {
        "shop": {
            "write_key": SHOP,
            "tracking_plan": "shop",
            "pii": [
                {"fields": ["context.ip"], "action": "truncate_ip"},
                {"fields": ["traits.email", "properties.email"], "action": "hash"},
                {"keys": ["password"], "action": "drop"},
                {"values": ["credit_card"], "action": "mask", "keep_last": 4},
            ],
        },
        "open": {"write_key": OPEN},
    },
}


class Running:
    def __init__(self, process: CollectorProcess, archive: Archive) -> None:
        self.process = process
        self.archive = archive

    def post(self, path: str, body: dict, key: str = SHOP) -> requests.Response:
        return requests.post(self.process.url + path, data=json.dumps({"writeKey": key, **body}), timeout=15)

    def stored(self, user: str, key: str = SHOP) -> list[dict]:
        """Every event stored for ``user``: a planned sentinel is sent last and waited for (one
        user's events are stored and delivered in order)."""
        sentinel = f"sentinel-{uuid.uuid4().hex}"
        answer = self.post("/v1/track", {"userId": user, "event": "Sentinel", "messageId": sentinel}, key)
        assert (answer.status_code, answer.json()) == (200, {"success": True})
        self.archive.wait(lambda events: any(e.get("messageId") == sentinel for e in events))
        return [e for e in self.archive.of(user) if e["messageId"] != sentinel]

    def metric(self, name: str, **labels: str) -> float:
        return self.process.metric(name, **labels)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory = tmp_path_factory.mktemp("filters")
    config = {**CONFIG, "destinations": {"archive": file_destination(directory / "archive")}}
    process = CollectorProcess(directory / "collector", config).start()
    try:
        yield Running(process, Archive(directory / "archive"))
    finally:
        if process.alive:
            process.stop()


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:16]}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_batch_stores_the_valid_and_flagged_events_changed_and_not_the_blocked_one(collector: Running) -> None:
    user = new_user()
    blocked_before = collector.metric("collector_events_blocked_total", source="shop", reason="unplanned_event")
    mismatches_before = collector.metric("collector_events_violations_total", source="shop", type="Datatype-Mismatch")
    received_before = collector.metric("collector_events_received_total", source="shop")
    valid = {"type": "track", "userId": user, "event": "Order Completed", "messageId": f"valid-{user}",
             "properties": {"order_id": "o-1", "total": 42.5, "email": " Ann@Example.com ", "card": CARD,
                            "login": {"password": "hunter2", "name": "ann"}}}
    violating = {"type": "track", "userId": user, "event": "Order Completed", "messageId": f"violating-{user}",
                 "properties": {"order_id": "o-2", "total": "42.50"}, "context": {"ip": "203.0.113.9"}}
    unplanned = {"type": "track", "userId": user, "event": "Order Refunded", "messageId": f"unplanned-{user}",
                 "properties": {"order_id": "o-1"}}
    identify = {"type": "identify", "userId": user, "messageId": f"identify-{user}",
                "traits": {"email": "ann@example.com", "password": "hunter2"}}

    answer = collector.post("/v1/batch", {"batch": [valid, violating, unplanned, identify]})
    assert (answer.status_code, answer.json()) == (200, {"success": True})

    stored = {event["messageId"]: event for event in collector.stored(user)}
    assert sorted(stored) == sorted([f"valid-{user}", f"violating-{user}", f"identify-{user}"])

    first = stored[f"valid-{user}"]
    assert first["properties"] == {"order_id": "o-1", "total": 42.5, "email": sha256("ann@example.com"),
                                   "card": "*" * 15 + "1111", "login": {"name": "ann"}}
    assert first["context"]["ip"] == "127.0.0.0"  # the peer's address, truncated
    assert "violationErrors" not in first["context"]

    second = stored[f"violating-{user}"]
    assert second["properties"] == {"order_id": "o-2", "total": "42.50"}
    assert second["context"]["ip"] == "203.0.113.0"  # the client's own context.ip, truncated too
    assert second["context"]["violationErrors"] == [
        {"type": "Datatype-Mismatch", "message": "properties.total must be number", "path": "properties.total"}
    ]

    third = stored[f"identify-{user}"]
    assert third["traits"] == {"email": sha256("ann@example.com")}
    assert "violationErrors" not in third["context"]  # the plan judged the address, not its hash

    assert collector.metric("collector_events_blocked_total", source="shop", reason="unplanned_event") == blocked_before + 1
    assert collector.metric("collector_events_violations_total", source="shop", type="Datatype-Mismatch") == (
        mismatches_before + 1
    )
    # The three stored events and the sentinel; the blocked one is not received.
    assert collector.metric("collector_events_received_total", source="shop") == received_before + 4


def test_a_blocked_single_event_is_answered_200_and_not_stored(collector: Running) -> None:
    user = new_user()
    before = collector.metric("collector_events_blocked_total", source="shop")
    answer = collector.post("/v1/track", {"userId": user, "event": "Unplanned", "properties": {}})
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert collector.stored(user) == []
    assert collector.metric("collector_events_blocked_total", source="shop") == before + 1


def test_a_batch_of_only_blocked_events_is_answered_200(collector: Running) -> None:
    user = new_user()
    batch = [{"type": "track", "userId": user, "event": f"Unplanned {i}"} for i in range(3)]
    answer = collector.post("/v1/batch", {"batch": batch})
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert collector.stored(user) == []


def test_blocked_and_invalid_events_in_one_batch(collector: Running) -> None:
    user = new_user()
    batch = [{"type": "track", "userId": user, "event": "Unplanned"}, {"type": "track", "event": "No identity"}]
    answer = collector.post("/v1/batch", {"batch": batch})
    assert answer.status_code == 200
    assert answer.json()["rejected"] == [{"index": 1, "code": "missing_identity",
                                          "message": "userId or anonymousId is required"}]
    assert collector.stored(user) == []


def test_a_source_without_filters_is_left_alone(collector: Running) -> None:
    user = new_user()
    event = {"userId": user, "event": "Anything", "properties": {"email": "ann@example.com", "card": CARD,
                                                                  "password": "hunter2"}}
    assert collector.post("/v1/track", event, key=OPEN).status_code == 200
    [stored] = collector.archive.wait_user(user, 1)
    assert stored["properties"] == event["properties"]
    assert stored["context"]["ip"] == "127.0.0.1"
    assert "violationErrors" not in stored["context"]
