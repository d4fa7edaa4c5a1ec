"""End to end through the collector process to a real broker: what the stream destinations'
test_e2e.py files share (events of many users, sending them, reading what the collector stored,
and checking what a consumer got against both)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.destinations.stream_checks import message_id, order_report
from tests.e2e.helpers import FAST_RETRY, STORAGE, post
from tests.support.process import CollectorProcess
from tests.support.waiting import wait_until

SOURCE = "web"
SOURCE_KEY = "wk_stream_source"
DESTINATION = "stream"


def collector_config(destination: dict[str, Any], max_events: int = 50) -> dict[str, Any]:
    """One source and one stream destination with small batches and fast retries, so that a
    test sees many batches in flight and recovers within seconds of a broker coming back."""
    return {
        "storage": STORAGE,
        "sources": {SOURCE: {"write_key": SOURCE_KEY}},
        "destinations": {DESTINATION: {
            **destination,
            "batch": {"max_events": max_events, "max_wait": 0.02},
            "retry": {**FAST_RETRY, "max_backoff": 0.5},
            "timeout": 15,
        }},
    }


def make_events(users: int, per_user: int) -> list[dict[str, Any]]:
    """track, identify and page calls of ``users`` users, interleaved, as a server library sends
    them; a user is known by its anonymousId, and by its userId from its first identify on."""
    run = uuid.uuid4().hex[:8]
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = []
    for i in range(per_user):
        for u in range(users):
            base = {"anonymousId": f"anon-{run}-{u}", "messageId": f"{run}-{u}-{i}", "timestamp": now,
                    "context": {"library": {"name": "analytics-python", "version": "2.3.4"}}}
            if i % 3 == 1:
                events.append({**base, "type": "identify", "userId": f"user-{u}", "traits": {"step": i}})
            elif i % 3 == 2:
                events.append({**base, "type": "page", "name": "Pricing", "properties": {"step": i}})
            else:
                events.append({**base, "type": "track", "event": "Step Done", "properties": {"step": i, "ok": True}})
    return events


def post_events(collector: CollectorProcess, events: list[dict[str, Any]], per_request: int = 100) -> None:
    """POST /v1/batch, ``per_request`` events at a time, in order; each must be accepted."""
    for start in range(0, len(events), per_request):
        status, answer = post(collector.url, "/v1/batch", {"batch": events[start:start + per_request]}, SOURCE_KEY)
        assert status == 200, (status, answer)


def send_with_sdk(collector: CollectorProcess, events: list[dict[str, Any]]) -> None:
    """The same calls through Segment's Python library (one consumer thread: batches in order)."""
    from segment.analytics.client import Client

    errors: list[str] = []
    client = Client(SOURCE_KEY, host=collector.url, upload_size=25, max_retries=2, timeout=10,
                    on_error=lambda error, batch: errors.append(f"{error!r}: {len(batch)} events"))
    for e in events:
        common = {"anonymous_id": e["anonymousId"], "context": e["context"], "message_id": e["messageId"]}
        if e["type"] == "identify":
            client.identify(e["userId"], e["traits"], **common)
        elif e["type"] == "page":
            client.page(None, None, e["name"], e["properties"], **common)
        else:
            client.track(None, e["event"], e["properties"], **common)
    client.flush()
    client.join()
    assert errors == []


def stored_bodies(collector: CollectorProcess) -> dict[str, bytes]:
    """messageId -> the event as the collector stored it (read-only, from its log)."""
    db = Path(collector.config["storage"]["path"]) / "events.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {mid: bytes(body) for mid, body in conn.execute("SELECT message_id, body FROM events")}
    finally:
        conn.close()


def delivered(collector: CollectorProcess) -> int:
    """The events the collector counts delivered to the destination."""
    return int(collector.metric("collector_delivered_events_total", destination=DESTINATION))


def wait_delivered(collector: CollectorProcess, count: int, timeout: float = 30) -> None:
    """Until the collector counts ``count`` events delivered to the destination."""
    wait_until(f"{count} events delivered", lambda: delivered(collector) >= count, timeout=timeout)


def check_received(collector: CollectorProcess, sent: list[dict[str, Any]], received: list[bytes]) -> int:
    """Every sent event was received, each copy byte for byte the event as stored, and each user's
    first copies in the order the user's events were posted; returns the number of extra copies."""
    stored = stored_bodies(collector)
    missing, copies, disorder = order_report(sent, received)
    assert missing == [], f"{len(missing)} of {len(sent)} events never arrived: {missing[:10]}"
    assert disorder == [], disorder[:3]
    wrong = [message_id(body) for body in received if body != stored[message_id(body)]]
    assert wrong == [], f"bodies that are not the stored event: {wrong[:5]}"
    assert collector.metric("collector_dead_lettered_events_total", destination=DESTINATION) == 0
    return copies


class Poster:
    """Posts events in the background, ``per_request`` a request with ``pause`` seconds between
    requests, so that the collector is delivering the whole time a test does something to the broker."""

    def __init__(self, collector: CollectorProcess, events: list[dict[str, Any]], per_request: int = 20,
                 pause: float = 0.01) -> None:
        import threading

        self.errors: list[BaseException] = []

        def run() -> None:
            import time

            try:
                for start in range(0, len(events), per_request):
                    post_events(collector, events[start:start + per_request], per_request)
                    time.sleep(pause)
            except BaseException as error:  # noqa: BLE001 -- reported by join()
                self.errors.append(error)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "still posting"
        assert not self.errors, self.errors
