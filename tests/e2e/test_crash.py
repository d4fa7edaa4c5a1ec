"""kill -9 under load, restart on the same storage, a few times: every event whose request was
answered 200 is delivered. (The short version; the long one belongs to the benchmarks.)"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter

from tests.support.receiver import Receiver

from .helpers import FAST_BATCH, FAST_RETRY, basic, received_events, wait_until

WRITE_KEY = "wk_crash"
CLIENTS = 4
BATCH = 25
CYCLES = 3
LOAD_SECONDS = 1.2  # of load before each kill


class Client(threading.Thread):
    """Posts batches of unique events as fast as it can over one keep-alive connection; a batch
    that got no 200 is posted again, with the same messageIds, until it does (as real SDKs do)."""

    def __init__(self, index: int, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"client-{index}")
        self.index = index
        self.port = port
        self.stop_event = stop
        self.acked: list[str] = []  # messageIds of every event answered 200
        self.sent: set[str] = set()  # every messageId ever posted
        self.failures = Counter()  # what the unanswered attempts ran into
        self.error: BaseException | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._headers = {"Content-Type": "application/json", "Authorization": basic(WRITE_KEY)}

    def run(self) -> None:
        try:
            number = 0
            while not self.stop_event.is_set():
                ids = [f"c{self.index}-{number + i}-{uuid.uuid4().hex[:6]}" for i in range(BATCH)]
                batch = [
                    {"type": "track", "userId": f"user-{self.index}-{(number + i) % 7}", "event": "Load",
                     "messageId": m, "properties": {"client": self.index, "n": number + i}}
                    for i, m in enumerate(ids)
                ]
                number += BATCH
                body = json.dumps({"batch": batch}).encode()
                self.sent.update(ids)
                while not self._post(body):
                    if self.stop_event.is_set():
                        return  # this batch may or may not have been committed: not counted
                    time.sleep(0.01)
                self.acked += ids
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def _post(self, body: bytes) -> bool:
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self._conn.request("POST", "/v1/batch", body, self._headers)
            answer = self._conn.getresponse()
            answer.read()
            if answer.status == 200:
                return True
            self.failures[f"HTTP {answer.status}"] += 1
        except (OSError, http.client.HTTPException) as error:
            self.failures[type(error).__name__] += 1
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return False


def test_kill_9_under_load_loses_no_acknowledged_event(collector_factory, receiver: Receiver) -> None:
    collector = collector_factory({
        "storage": {"sync": "full", "min_free_bytes": 0},
        "sources": {"load": {"write_key": WRITE_KEY}},
        "destinations": {
            "downstream": {
                "type": "segment", "endpoint": receiver.url, "write_key": "wk_downstream",
                "batch": {**FAST_BATCH, "max_events": 200}, "retry": FAST_RETRY,
            }
        },
    })
    stop = threading.Event()
    clients = [Client(i, collector.port, stop) for i in range(CLIENTS)]
    for client in clients:
        client.start()
    acked_before_kill = []
    try:
        for cycle in range(CYCLES):
            start = sum(len(c.acked) for c in clients)
            time.sleep(LOAD_SECONDS)  # the load runs meanwhile
            acked_before_kill.append(sum(len(c.acked) for c in clients) - start)
            collector.kill()
            assert collector.proc.returncode == -9
            collector.start()  # same config, same storage
        time.sleep(LOAD_SECONDS / 2)  # some load on the last incarnation too
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    for client in clients:
        assert client.error is None, f"{client.name} crashed: {client.error!r}"
        assert not client.is_alive()

    acked = Counter(m for c in clients for m in c.acked)
    sent = set().union(*(c.sent for c in clients))
    assert max(acked.values()) == 1
    # Every cycle was under real load when the kill came, and the kills did interrupt requests.
    assert all(n >= 100 for n in acked_before_kill), acked_before_kill
    failures = sum((c.failures for c in clients), Counter())
    assert sum(failures.values()) >= CYCLES, failures

    def delivered_all() -> bool:
        return set(acked) <= {e["messageId"] for e in received_events(receiver)}

    try:
        wait_until("every acknowledged event at the receiver", delivered_all, timeout=45, every=0.1)
    except AssertionError:
        missing = set(acked) - {e["messageId"] for e in received_events(receiver)}
        raise AssertionError(
            f"{len(missing)} of {len(acked)} acknowledged events were never delivered, e.g. {sorted(missing)[:5]}"
        ) from None
    # A clean stop finishes the deliveries under way, so that every duplicate is counted.
    assert collector.stop(timeout=20) == 0

    received = received_events(receiver)
    counts = Counter(e["messageId"] for e in received)
    assert set(counts) <= sent, "the receiver got events nobody sent"
    for event in received:  # intact, as posted
        client, n = event["properties"]["client"], event["properties"]["n"]
        assert event["messageId"].startswith(f"c{client}-{n}-") and event["event"] == "Load"
    duplicates = sum(n - 1 for n in counts.values())
    unacked_delivered = len(set(counts) - set(acked))
    print(
        f"\ncrash test: {CYCLES} kill -9 cycles, {len(acked)} events acknowledged "
        f"(per cycle before the kill: {acked_before_kill}), {len(counts)} distinct delivered, "
        f"{duplicates} duplicate deliveries (at-least-once), {unacked_delivered} delivered without a 200 "
        f"(committed, answer lost in the kill); client-side failures: {dict(failures)}"
    )
