"""Every event of a batch is filtered on its own, through the real process: the batch's shared
`context` and `integrations` are inherited by each event as a copy of its own, so a source filter
that changes one event's nested objects in place (a hash, a mask, a dropped key, a truncated
address, the tracking plan's flags) changes no other event of the batch."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Iterator

import pytest
import requests

from tests.ingest.test_routes import Archive, file_destination
from tests.support.process import CollectorProcess

EMAIL, PHONE, DEVICE_IP = "ann@example.com", "+1 650 555 1212", "203.0.113.77"
EVENTS_PER_BATCH = 5

SOURCES = {
    "hash": [{"fields": ["context.traits.email", "integrations.Webhooks.token"], "action": "hash"}],
    "salted": [{"fields": ["context.traits.email"], "action": "hash", "salt": "pepper:"}],
    "mask": [{"fields": ["context.traits.phone"], "action": "mask", "keep_last": 4}],
    "drop": [{"keys": ["password"], "action": "drop"}],
    "truncate": [{"fields": ["context.device.ip"], "action": "truncate_ip"}],
    "flag": [],
}


def batch_context() -> dict:
    return {
        "traits": {"email": EMAIL, "phone": PHONE},
        "device": {"ip": DEVICE_IP, "id": "d-1"},
        "library": {"name": "analytics-python", "version": "2.3.4"},
        "login": {"password": "hunter2", "user": "ann"},
    }


def batch_integrations() -> dict:
    return {"All": True, "Webhooks": {"token": "t-secret"}, "Mixpanel": {"nested": {"n": 1}}}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess, Archive]]:
    directory = tmp_path_factory.mktemp("isolation")
    config = {
        "tracking_plans": {
            "strict": {
                "violations": "flag",
                "events": {"Order Completed": {"type": "object", "required": ["order_id"],
                                               "properties": {"order_id": {"type": "string"}}}},
            },
        },
        "sources": {
            name: {"write_key": f"wk_{name}", "pii": rules, **({"tracking_plan": "strict"} if name == "flag" else {})}
            for name, rules in SOURCES.items()
        },
        "destinations": {"archive": file_destination(directory / "archive")},
    }
    process = CollectorProcess(directory / "collector", config).start()
    try:
        yield process, Archive(directory / "archive")
    finally:
        process.stop()


def send_batch(collector: tuple[CollectorProcess, Archive], source: str, events: list[dict]) -> list[dict]:
    process, archive = collector
    user = f"u-{uuid.uuid4().hex[:12]}"
    batch = [{**event, "userId": user, "messageId": f"{user}-{i}"} for i, event in enumerate(events)]
    body = {"writeKey": f"wk_{source}", "context": batch_context(), "integrations": batch_integrations(),
            "batch": batch}
    answer = requests.post(process.url + "/v1/batch", data=json.dumps(body), timeout=15)
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    stored = archive.wait_user(user, len(events))
    return sorted((e for e in stored if e["userId"] == user), key=lambda e: e["messageId"])


def tracks(count: int = EVENTS_PER_BATCH) -> list[dict]:
    return [{"type": "track", "event": f"Event {i}"} for i in range(count)]


def untouched_parts(event: dict) -> None:
    """What no rule of these sources changes stays exactly as the batch sent it."""
    assert event["context"]["library"] == {"name": "analytics-python", "version": "2.3.4"}
    assert event["integrations"]["Mixpanel"] == {"nested": {"n": 1}}


def test_hash_is_applied_once_to_every_event(collector) -> None:
    stored = send_batch(collector, "hash", tracks())
    assert len(stored) == EVENTS_PER_BATCH
    for event in stored:
        assert event["context"]["traits"] == {"email": sha256(EMAIL), "phone": PHONE}
        assert event["integrations"]["Webhooks"] == {"token": sha256("t-secret")}
        untouched_parts(event)


def test_a_salted_hash_is_applied_once_to_every_event(collector) -> None:
    for event in send_batch(collector, "salted", tracks()):
        assert event["context"]["traits"]["email"] == sha256("pepper:" + EMAIL)


def test_mask_is_applied_to_every_event(collector) -> None:
    for event in send_batch(collector, "mask", tracks()):
        assert event["context"]["traits"] == {"email": EMAIL, "phone": "*" * (len(PHONE) - 4) + PHONE[-4:]}
        untouched_parts(event)


def test_drop_is_applied_to_every_event(collector) -> None:
    for event in send_batch(collector, "drop", tracks()):
        assert event["context"]["login"] == {"user": "ann"}
        untouched_parts(event)


def test_truncate_ip_is_applied_to_every_event(collector) -> None:
    for event in send_batch(collector, "truncate", tracks()):
        assert event["context"]["device"] == {"ip": "203.0.113.0", "id": "d-1"}
        untouched_parts(event)


def test_an_event_with_its_own_nested_context_keeps_it_and_the_others_inherit_the_batchs(collector) -> None:
    events = tracks(3)
    events[1]["context"] = {"traits": {"email": "bob@example.com"}}
    stored = send_batch(collector, "hash", events)
    assert [e["context"]["traits"] for e in stored] == [
        {"email": sha256(EMAIL), "phone": PHONE}, {"email": sha256("bob@example.com")},
        {"email": sha256(EMAIL), "phone": PHONE},
    ]


def test_the_plans_flags_belong_to_the_event_that_violates(collector) -> None:
    events = [
        {"type": "track", "event": "Order Completed", "properties": {"order_id": "o-1"}},
        {"type": "track", "event": "Order Completed", "properties": {"order_id": 2}},
        {"type": "track", "event": "Order Completed", "properties": {"order_id": "o-3"}},
        {"type": "track", "event": "Order Completed", "properties": {}},
        {"type": "track", "event": "Order Completed", "properties": {"order_id": "o-5"}},
    ]
    stored = send_batch(collector, "flag", events)
    flagged = [[v["type"] for v in e["context"].get("violationErrors", [])] for e in stored]
    assert flagged == [[], ["Datatype-Mismatch"], [], ["Required-Missing"], []]
    for event in stored:
        assert event["context"]["traits"] == {"email": EMAIL, "phone": PHONE}
        untouched_parts(event)
