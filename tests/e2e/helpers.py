"""Small shared pieces of the end-to-end tests: posting to the collector, polling, the dead letters."""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path


from tests.support.waiting import wait_until  # noqa: E402,F401  (re-exported for the tests)

# What every e2e collector uses unless a test says otherwise: fast batching and retries, and no
# free-disk floor (the machine is shared; a busy disk must not turn these tests into 503 tests).
FAST_BATCH = {"max_wait": 0.05}
FAST_RETRY = {"initial_backoff": 0.1, "max_backoff": 1}
STORAGE = {"min_free_bytes": 0}


def request_json(request) -> object:
    """A recorded request's JSON body. (The Receiver's aiohttp server already inflates gzip bodies
    but keeps the Content-Encoding header, so Receiver.events() would gunzip twice; see the report.)"""
    body = request.body
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return json.loads(body)


def received_events(receiver) -> list[dict]:
    """Every event in every successful request to ``receiver``, in arrival order."""
    return [event for event, _ in received_with_times(receiver)]


def received_with_times(receiver) -> list[tuple[dict, float]]:
    """(event, monotonic arrival time of its request) for every successfully received event."""
    out: list[tuple[dict, float]] = []
    for request in receiver.successful():
        data = request_json(request)
        items = data["batch"] if isinstance(data, dict) and "batch" in data else data
        out += [(item, request.at) for item in items]
    return out


def wait_for_events(receiver, count: int, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        events = received_events(receiver)
        if len(events) >= count:
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} events at the receiver within {timeout}s, got {len(events)}")
        time.sleep(0.02)


def basic(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def post(url: str, path: str, body: dict, write_key: str | None = None, timeout: float = 10) -> tuple[int, dict]:
    """POST JSON; returns (status, decoded answer) for any status."""
    headers = {"Content-Type": "application/json"}
    if write_key is not None:
        headers["Authorization"] = basic(write_key)
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def by_message_id(events: list[dict]) -> Counter[str]:
    return Counter(e["messageId"] for e in events)


def dead_letters(storage_path: str | Path, destination: str) -> list[dict]:
    """The dead-letter rows of a destination, read from the collector's SQLite file (read-only)."""
    db = Path(storage_path) / "events.db"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT seq, received, failed, reason, body FROM dead_letters WHERE destination = ? ORDER BY id",
            (destination,),
        ).fetchall()
    finally:
        conn.close()
    return [
        {"seq": seq, "received": received, "failed": failed, "reason": reason, "event": json.loads(body)}
        for seq, received, failed, reason, body in rows
    ]
