"""A destination down (connection refused) under steady load, the short version (the long one:
benchmarks/chaos/outage.py).

In one run: load with both destinations up, then the same load with one of them refusing
connections, then it comes back. Ingestion keeps its rate through the outage (compared with the
rate before it, not with a number), memory stays flat while the backlog grows (the dispatcher
reads ahead a bounded number of events), the backlog drains faster than events come in, and every
user's events arrive in order at both destinations.
"""

from __future__ import annotations

import statistics
import time

from tests.support.process import free_port

from .support import Deliveries, Loader, PortReceiver, first_delivery_order, rss_kb, wait_until

WRITE_KEY = "wk_outage_load"
FAST_RETRY = {"initial_backoff": 0.1, "max_backoff": 0.5}
PAD = 1000  # bytes of padding per event: a backlog of real size


def segment(url: str) -> dict:
    return {"type": "segment", "endpoint": url, "write_key": "wk_vendor", "concurrency": 2,
            "batch": {"max_wait": 0.05, "max_events": 100}, "retry": FAST_RETRY}


def acked_in(loaders: list[Loader], start: float, end: float) -> int:
    return sum(n for loader in loaders for at, n in loader.acks if start <= at < end)


def rate(loaders: list[Loader], start: float, end: float, bucket: float = 0.5) -> float:
    """The median of the ingest rates over ``bucket``-second windows: steady, and robust to a
    neighbour's burst on a shared machine."""
    rates = []
    at = start
    while at + bucket <= end:
        rates.append(acked_in(loaders, at, at + bucket) / bucket)
        at += bucket
    return statistics.median(rates)


def test_an_outage_under_steady_load_slows_nothing_holds_no_memory_and_drains_in_order(collector_factory) -> None:
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
            t1 = time.monotonic()
            flaky.stop()  # the outage: connection refused from now on
            outage_started = time.monotonic()
            rss = [rss_kb(pid)]
            while time.monotonic() - outage_started < 6.0:
                time.sleep(0.5)
                rss.append(rss_kb(pid))
            t2 = time.monotonic()
            before_outage = Deliveries(flaky).update()
            flaky = PortReceiver(flaky_port).start()  # back, at the same address
            restored = time.monotonic()
            acked_at_restore = {m for l in loaders for m in l.acked}
            backlog = len(acked_at_restore - before_outage.ids)
            back = Deliveries(flaky)
            wait_until("the backlog to drain", lambda: acked_at_restore <= back.update().ids | before_outage.ids,
                       timeout=30, every=0.1)
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
                       timeout=30, every=0.1)
            statuses = sum((l.statuses for l in loaders), start=type(loaders[0].statuses)())
            assert set(statuses) == {200}, statuses

            before, during = rate(loaders, t0, t1), rate(loaders, outage_started, t2)
            ingest_during_drain = acked_in(loaders, restored, drained) / (drained - restored)
            drain_rate = backlog / (drained - restored)
            growth_mb = (max(rss) - rss[0]) / 1024
            backlog_mb = backlog * (PAD + 200) / 1024 / 1024
            print(
                f"\noutage under load: ingest {before:.0f} ev/s before, {during:.0f} ev/s during; backlog {backlog} events"
                f" ({backlog_mb:.1f} MB) drained in {drained - restored:.1f}s = {drain_rate:.0f} ev/s while"
                f" {ingest_during_drain:.0f} ev/s came in; RSS during the outage {rss[0] // 1024}..{max(rss) // 1024} MB"
            )
            assert during >= 0.8 * before, (before, during)
            assert backlog_mb > 4 * max(growth_mb, 1), "the backlog is too small to tell bounded memory from unbounded"
            assert growth_mb < 12, rss  # flat: the read-ahead is bounded, whatever the backlog
            assert drain_rate > 1.5 * ingest_during_drain, (drain_rate, ingest_during_drain)
            for events in (before_outage.events + back.events, steady_got.events):
                for user, order in first_delivery_order(events).items():
                    assert order == sorted(order), f"{user}'s events out of order"
            assert collector.metric("collector_deliveries_total", destination="flaky", outcome="retry") >= 3
        finally:
            flaky.stop()
    finally:
        steady.stop()
