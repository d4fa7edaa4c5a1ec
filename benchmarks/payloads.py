"""Request bodies shaped like what Segment's SDKs send.

No body carries a messageId: wrk replays the same bodies over and over, and the collector would
drop every repeat as a duplicate. The collector generates one for each event instead.
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import msgspec

WRITE_KEY = "wk_bench"
BASIC_AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

# Distinct users, so that delivery (which keeps order per user) can use all its lanes.
USERS = 100


def track_event(i: int) -> dict:
    """A track call of about 400 bytes once the collector has added its server fields."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{i % USERS:04d}",
        "anonymousId": f"anon-{i % USERS:04d}-5f1c2a",
        "properties": {"order_id": f"o-{i:08d}", "revenue": 42.5, "currency": "EUR", "items": 3},
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.2"},
            "locale": "fr-FR",
        },
        "timestamp": "2024-05-01T12:00:00.000Z",
    }


# A tracking plan the benchmark's events pass (so every event is checked in full, none blocked),
# and PII rules of each kind, as config.example.yaml shows them.
TRACKING_PLANS = {
    "bench": {
        "unplanned_events": "block",
        "violations": "flag",
        "events": {
            "Order Completed": {
                "type": "object",
                "required": ["order_id", "revenue"],
                "properties": {
                    "order_id": {"type": "string"},
                    "revenue": {"type": "number", "minimum": 0},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "items": {"type": "integer"},
                },
            },
        },
    },
}
FILTERED_SOURCE = {
    "tracking_plan": "bench",
    "pii": [
        {"fields": ["context.ip"], "action": "truncate_ip"},
        {"keys": ["password", "ssn"], "action": "drop"},
        {"fields": ["userId"], "action": "hash"},
        {"values": ["credit_card", "email", "phone"], "action": "mask", "keep_last": 4},
    ],
}


def single_body(i: int, with_write_key: bool = False) -> bytes:
    event = track_event(i)
    if with_write_key:
        event["writeKey"] = WRITE_KEY
    return msgspec.json.encode(event)


def batch_body(i: int, events: int = 100) -> bytes:
    return msgspec.json.encode(
        {
            "batch": [track_event(i * events + k) for k in range(events)],
            "sentAt": "2024-05-01T12:00:00.000Z",
        }
    )


def write_bodies(path: Path, bodies: list[bytes]) -> Path:
    """Bodies for benchmarks/lua/post.lua and openloop.py: "<length>\\n<bytes>" one after another."""
    with open(path, "wb") as f:
        for body in bodies:
            f.write(b"%d\n" % len(body))
            f.write(body)
    return path


def read_bodies(path: Path) -> list[bytes]:
    bodies = []
    with open(path, "rb") as f:
        while line := f.readline():
            bodies.append(f.read(int(line)))
    return bodies


class Load(msgspec.Struct, frozen=True):
    """One kind of request: where it goes, with which headers, and how many events each carries."""

    name: str
    path: str
    headers: dict[str, str]
    events_per_request: int
    bodies: list[bytes]


def track_load() -> Load:
    return Load(
        "track",
        "/v1/track",
        {"Content-Type": "application/json", "Authorization": BASIC_AUTH},
        1,
        [single_body(i) for i in range(USERS)],
    )


def batch_load(events: int = 100) -> Load:
    return Load(
        "batch",
        "/v1/batch",
        {"Content-Type": "application/json", "Authorization": BASIC_AUTH},
        events,
        [batch_body(i, events) for i in range(8)],
    )


def gzip_load(events: int = 100) -> Load:
    return Load(
        "gzip",
        "/v1/batch",
        {"Content-Type": "application/json", "Content-Encoding": "gzip", "Authorization": BASIC_AUTH},
        events,
        [gzip.compress(batch_body(i, events), 6) for i in range(8)],
    )


def textplain_load() -> Load:
    # What analytics.js sends with sendBeacon-style transport: text/plain, write key in the body.
    return Load(
        "textplain",
        "/v1/t",
        {"Content-Type": "text/plain"},
        1,
        [single_body(i, with_write_key=True) for i in range(USERS)],
    )


def vendor_event(i: int) -> dict:
    """A Segment spec e-commerce event as a website sends it: products, the visitor's traits and
    page in its context, no client timestamp (ad platforms refuse old events; the collector stamps
    it), so that every vendor destination's presets take it."""
    user = i % USERS
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{user:04d}",
        "anonymousId": f"anon-{user:04d}-5f1c2a",
        "properties": {
            "order_id": f"o-{i:08d}", "total": 64.97, "revenue": 59.97, "currency": "EUR",
            "products": [{"product_id": f"sku-{k}", "name": f"Product {k}", "price": 19.99, "quantity": 1}
                         for k in range(3)],
            "gclid": f"Cj0KCQ-bench-{i:08d}",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
            "page": {"url": "https://shop.example.com/checkout", "title": "Checkout"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36",
            "traits": {"email": f"user{user}@example.com"},
            "locale": "fr-FR",
        },
    }


def vendor_load(events: int = 100) -> Load:
    return Load(
        "vendors",
        "/v1/batch",
        {"Content-Type": "application/json", "Authorization": BASIC_AUTH},
        events,
        [msgspec.json.encode({"batch": [vendor_event(i * events + k) for k in range(events)]}) for i in range(8)],
    )


LOADS = {"track": track_load, "batch": batch_load, "gzip": gzip_load, "textplain": textplain_load}
