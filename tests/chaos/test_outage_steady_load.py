"""A destination down (connection refused) under steady load, the short version (the long one,
which measures rates and memory: benchmarks/chaos/outage.py).

In one run: load with both destinations up, then the same load with one of them refusing
connections until a backlog of real size has built up, then it comes back. What is asserted is
behaviour, not speed, so that a busy machine cannot fail it: ingestion never stalls during the
outage (every two seconds of it acknowledge events, every answer is 200), memory does not follow the
backlog (the dispatcher reads ahead a bounded number of events), the backlog drains, and every
user's events arrive in order at both destinations.
"""

from __future__ import annotations

import time

from tests.support.process import free_port

from .support import Deliveries, Loader, PortReceiver, first_delivery_order, rss_kb, wait_until

WRITE_KEY = "wk_outage_load"
FAST_RETRY = {"initial_backoff": 0.1, "max_backoff": 0.5}
PAD = 1000  # bytes of padding per event: a backlog of real size
# The outage lasts until this many events wait for the destination (about 24 MB), or OUTAGE_MAX.
BACKLOG_EVENTS = 20_000
OUTAGE_MAX = 40.0
# Memory may grow this much during the outage: the bounded read-ahead and allocator noise. A
# dispatcher that held its backlog would grow by more than the backlog's size.
MEMORY_SLACK_MB = 12


def segment(url: str) -> dict:
    return {"type": "segment", "endpoint": url, "write_key": "wk_vendor", "concurrency": 2,
            "batch": {"max_wait": 0.05, "max_events": 100}, "retry": FAST_RETRY}


def acked_in(loaders: list[Loader], start: float, end: float) -> int:
    return sum(n for loader in loaders for at, n in loader.acks if start <= at < end)


def stalls(loaders: list[Loader], start: float, end: float, window: float = 2.0) -> list[float]:
    """The starts of the ``window``-second spans in which no event was acknowledged."""
    found = []
    at = start
    while at + window <= end:
        if acked_in(loaders, at, at + window) == 0:
            found.append(round(at - start, 1))
        at += window
    return found


def test_an_outage_under_steady_load_stalls_nothing_holds_no_memory_and_drains_in_order(collector_factory) -> None:
    flaky_port = free_port()
    flaky = PortReceiver(flaky_port).start()
    steady = PortReceiver(free_port()).start()
    try:
        collector = collector_factory({
            "storage": {"min_free_bytes": 0, "sync": "normal"},
            "sources": {"app": {"write_key": WRITE_KEY}},
            "destinations": {"flaky": segment(flaky.url), "steady": segment(steady.url)},
        })
        pid = collector.proc.pid
        # steady: two clients offering up to 5,000 events/s each (about half of what this machine takes)
        loaders = [
            Loader(collector.port, WRITE_KEY, f"o{i}", batch=50, pad=PAD, users=5, retry=True, interval=0.01)
            for i in range(2)
        ]
        for loader in loaders:
            loader.start()
        try:
            time.sleep(1.0)  # warm up
            t0 = time.monotonic()
            time.sleep(3.0)
            delivered_before = Deliveries(flaky).update()
            flaky.stop()  # the outage: connection refused from now on
            outage_started = time.monotonic()
            rss = [rss_kb(pid)]
            while time.monotonic() - outage_started < OUTAGE_MAX:
                time.sleep(0.5)
                rss.append(rss_kb(pid))
                if sum(len(l.acked) for l in loaders) - len(delivered_before.ids) >= BACKLOG_EVENTS:
                    break
            t2 = time.monotonic()
            before_outage = Deliveries(flaky).update()
            flaky = PortReceiver(flaky_port).start()  # back, at the same address
            restored = time.monotonic()
            acked_at_restore = {m for l in loaders for m in l.acked}
            backlog = len(acked_at_restore - before_outage.ids)
            back = Deliveries(flaky)
            wait_until("the backlog to drain", lambda: acked_at_restore <= back.update().ids | before_outage.ids,
                       timeout=90, every=0.1)
            drained = time.monotonic()
        finally:
            for loader in loaders:
                loader.stop()
        try:
            acked = {m for l in loaders for m in l.acked}
            assert sum(len(l.acked) for l in loaders) == len(acked)
            steady_got = Deliveries(steady)
            wait_until("every event at both destinations",
                       lambda: acked <= back.update().ids | before_outage.ids and acked <= steady_got.update().ids,
                       timeout=60, every=0.1)
            statuses = sum((l.statuses for l in loaders), start=type(loaders[0].statuses)())
            assert set(statuses) == {200}, statuses

            growth_mb = (max(rss) - rss[0]) / 1024
            backlog_mb = backlog * (PAD + 200) / 1024 / 1024
            print(
                f"\noutage under load: {acked_in(loaders, t0, outage_started) / (outage_started - t0):.0f} ev/s before,"
                f" {acked_in(loaders, outage_started, t2) / (t2 - outage_started):.0f} ev/s during; backlog {backlog}"
                f" events ({backlog_mb:.1f} MB) drained in {drained - restored:.1f}s;"
                f" RSS during the outage {rss[0] // 1024}..{max(rss) // 1024} MB"
            )
            assert stalls(loaders, outage_started, t2) == [], "ingestion stalled during the outage"
            assert backlog_mb > 1.5 * MEMORY_SLACK_MB, "the backlog is too small to tell bounded memory from unbounded"
            assert growth_mb < MEMORY_SLACK_MB, rss  # flat: the read-ahead is bounded, whatever the backlog
            for events in (before_outage.events + back.events, steady_got.events):
                for user, order in first_delivery_order(events).items():
                    assert order == sorted(order), f"{user}'s events out of order"
            assert collector.metric("collector_deliveries_total", destination="flaky", outcome="retry") >= 3
        finally:
            flaky.stop()
    finally:
        steady.stop()
