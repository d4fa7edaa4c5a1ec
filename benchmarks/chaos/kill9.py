"""kill -9 at random moments under load, many times over; then: was every acknowledged event
delivered, and how many were delivered twice?

    python -m benchmarks.chaos.kill9 --cycles 100            # the long run
    python -m benchmarks.chaos.kill9 --cycles 20 --sync normal
    # kills a minute apart at a steady 2,500 events/s (2 clients x 25 events every 20 ms)
    python -m benchmarks.chaos.kill9 --cycles 30 --clients 2 --interval 0.02 --min-load 40 --max-load 80

Clients post batches of unique events as fast as they can and, like the SDKs, post a batch again
with the same messageIds until it is answered 200. After the last cycle the load stops, the
collector delivers what is left and stops cleanly, and the run reports:

- acknowledged: events answered 200; delivered: distinct messageIds the destination got;
- lost: acknowledged but never delivered (must be 0: the exit code is 1 otherwise);
- duplicates raw: deliveries of a messageId already delivered (at-least-once: a batch in flight
  when the collector died is sent again), in all and per kill (the percentage depends mostly on
  how often the collector is killed); after messageId dedup at the destination: what is
  left of them once the destination keeps one copy per messageId (0 unless two copies of one
  messageId differ), and the collector's own log, which must hold each messageId once (its dedup
  survives the kills: a client's re-post of a batch whose 200 was lost is not stored again);
- delivered without a 200: committed, but the answer was lost in the kill (the client re-posted).
"""

from __future__ import annotations

import argparse
import shutil
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from benchmarks.chaos.common import CollectorProcess, CountingReceiver, Loader, machine, say, statuses

WRITE_KEY = "wk_kill9"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=25, help="events per request")
    parser.add_argument("--min-load", type=float, default=0.3, help="shortest load before a kill, seconds")
    parser.add_argument("--max-load", type=float, default=2.0, help="longest load before a kill, seconds")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="pause between one client's requests, seconds (default 0: full load)")
    parser.add_argument("--sync", choices=["full", "normal"], default="full")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", default=None, help="working directory, kept (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON too")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    directory = Path(args.dir or tempfile.mkdtemp(prefix="kill9-"))
    receiver = CountingReceiver()
    collector = CollectorProcess(directory, {
        "storage": {"sync": args.sync, "min_free_bytes": 0},
        "sources": {"load": {"write_key": WRITE_KEY}},
        "destinations": {"downstream": {
            "type": "segment", "endpoint": receiver.url, "write_key": "wk_down",
            "batch": {"max_wait": 0.05, "max_events": 200}, "retry": {"initial_backoff": 0.1, "max_backoff": 1},
        }},
    }).start()
    say(f"kill9: {args.cycles} cycles, {args.clients} clients x {args.batch} events, sync {args.sync}; {machine()}; in {directory}")
    loaders = [
        Loader(collector.port, WRITE_KEY, f"k{i}", batch=args.batch, pad=200, users=7, retry=True, retry_after=0.02, timeout=5,
               interval=args.interval)
        for i in range(args.clients)
    ]
    for loader in loaders:
        loader.start()
    restarts: list[float] = []
    acked_at_kill: list[int] = []
    started = time.monotonic()
    try:
        for cycle in range(1, args.cycles + 1):
            time.sleep(rng.uniform(args.min_load, args.max_load))
            acked_at_kill.append(sum(l.acked_count for l in loaders))
            collector.kill()
            down = time.monotonic()
            collector.start(wait=30)
            restarts.append(time.monotonic() - down)
            if cycle % 10 == 0 or cycle == args.cycles:
                say(f"cycle {cycle}: {acked_at_kill[-1]} acknowledged so far, restart took {restarts[-1]:.2f}s")
        time.sleep(args.min_load)
    finally:
        for loader in loaders:
            loader.stop_event.set()
        for loader in loaders:
            loader.join(30)
    loaded = time.monotonic() - started
    acked = {m for l in loaders for m in l.acked}
    assert len(acked) == sum(l.acked_count for l in loaders), "an event was acknowledged twice"
    say(f"load stopped after {loaded:.0f}s; waiting for delivery of {len(acked)} acknowledged events")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with receiver.lock:
            missing = len(acked - receiver.ids)
        if not missing:
            break
        time.sleep(0.2)
    code = collector.stop(timeout=30)
    time.sleep(0.5)
    with receiver.lock:
        delivered = set(receiver.ids)
        summary = {
            "cycles": args.cycles,
            "sync": args.sync,
            "seconds_under_load": round(loaded, 1),
            "acknowledged": len(acked),
            "delivered_distinct": len(delivered),
            "lost": len(acked - delivered),
            "duplicates_raw": receiver.duplicates,
            "duplicates_raw_pct": round(100 * receiver.duplicates / max(1, receiver.delivered), 3),
            "duplicates_raw_per_kill": round(receiver.duplicates / args.cycles, 1),
            "duplicates_after_messageId_dedup": receiver.different_bodies,
            "delivered_without_a_200": len(delivered - acked),
            "order_violations_per_user": receiver.order_violations,
            "stored_twice_in_the_log": stored_twice(directory / "data" / "events.db"),
            "restart_seconds_median": round(sorted(restarts)[len(restarts) // 2], 2),
            "restart_seconds_max": round(max(restarts), 2),
            "client_answers": statuses(loaders),
            "client_connection_failures": sum(sum(l.errors.values()) for l in loaders),
            "clean_stop_exit_code": code,
        }
    receiver.close()
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")
    if args.json:
        print(json.dumps(summary))
    ok = summary["lost"] == 0 and summary["stored_twice_in_the_log"] == 0 and summary["duplicates_after_messageId_dedup"] == 0
    say("PASS" if ok else "FAIL: acknowledged events were lost or stored twice")
    if args.dir is None:
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if ok else 1


def stored_twice(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT count(*) - count(DISTINCT source || ':' || message_id) FROM events").fetchone()[0]
    finally:
        conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
