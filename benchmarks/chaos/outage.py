"""A destination down for minutes at steady load: is ingestion unaffected, memory flat, and how
fast does the backlog drain once the destination is back?

    python -m benchmarks.chaos.outage --minutes 10             # the long run
    python -m benchmarks.chaos.outage --minutes 2 --rate 3000
    python -m benchmarks.chaos.outage --minutes 10 --dedup-window 24h   # the default window

Two destinations: `steady` stays up, `flaky` refuses connections for --minutes, then comes back at
the same address. The load is an open-ish loop at --rate events/s (clients post on a fixed
schedule; a late answer delays only its own client). Reported: the ingest rate before, during and
after the outage; RSS over time; the backlog; how long it took to drain and at what rate, against
the ingest rate meanwhile (the target is at least 2x); order per user at both destinations; lost
events (must be 0).

Memory: the backlog waits on disk, so an outage should cost no memory. What does grow with time is
the dedup index (every messageId of `storage.dedup_window`, held by the log writer process). So the
run uses a short window (--dedup-window, 2 min) and loads for longer than that before the outage,
so that the index is full and steady when the destination goes down; RSS is reported per process
with the index's size (`collector_dedup_ids`), and "memory flat" (the highest sample of the
outage within 10% of the first, both processes together) is part of PASS when the window is
shorter than the load before the outage.
"""

from __future__ import annotations

import argparse
import shutil
import json
import tempfile
import time
from pathlib import Path

from benchmarks.chaos.common import (
    CollectorProcess, CountingReceiver, Loader, files, machine, own_rss_kb, rss_kb, say, statuses,
)
from collector.config.units import Duration
from tests.support.process import child_pids

WRITE_KEY = "wk_outage"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long the destination is down")
    parser.add_argument("--rate", type=int, default=3000, help="events per second offered")
    parser.add_argument("--before", type=float, default=None,
                        help="seconds of load before the outage (default: the dedup window + 30 s)")
    parser.add_argument("--dedup-window", default="2m", help="storage.dedup_window")
    parser.add_argument("--after", type=float, default=30, help="seconds of load after the backlog drained")
    parser.add_argument("--sample", type=float, default=5, help="seconds between samples")
    parser.add_argument("--pad", type=int, default=500, help="padding bytes per event")
    parser.add_argument("--dir", default=None, help="working directory, kept (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    window = float(Duration.parse(args.dedup_window))
    if args.before is None:
        args.before = window + 30
    directory = Path(args.dir or tempfile.mkdtemp(prefix="outage-"))
    steady, flaky = CountingReceiver(), CountingReceiver()
    destination = {"type": "segment", "write_key": "wk_down", "concurrency": 2,
                   "batch": {"max_wait": 0.1, "max_events": 500}, "retry": {"initial_backoff": 0.5, "max_backoff": 5}}
    collector = CollectorProcess(directory, {
        "storage": {"min_free_bytes": 0, "dedup_window": args.dedup_window},
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {"steady": {**destination, "endpoint": steady.url}, "flaky": {**destination, "endpoint": flaky.url}},
    }).start()
    pid = collector.proc.pid
    clients, batch = 4, 50
    interval = clients * batch / args.rate
    say(f"outage: {args.minutes} min down at {args.rate} events/s offered ({clients} clients, {batch} a request every"
        f" {interval:.3f}s), dedup window {args.dedup_window}, {args.before:.0f} s before; {machine()}; in {directory}")
    loaders = [Loader(collector.port, WRITE_KEY, f"o{i}", batch=batch, pad=args.pad, users=10, retry=True,
                      retry_after=0.5, interval=interval, keep_ids=False) for i in range(clients)]
    for loader in loaders:
        loader.start()
    samples: list[dict] = []
    marks: dict[str, float] = {}

    def sample(phase: str) -> dict:
        point = {"t": round(time.monotonic() - marks["start"], 1), "phase": phase,
                 "acked": sum(l.acked_count for l in loaders), "rss_mb": round(rss_kb(pid) / 1024, 1),
                 "rss_main_mb": round((own_rss_kb(pid) or 0) / 1024, 1),
                 "rss_writer_mb": round(sum(own_rss_kb(child) or 0 for child in child_pids(pid)) / 1024, 1),
                 "dedup_ids": int(collector.metric("collector_dedup_ids")),
                 "flaky_distinct": flaky.distinct(), "steady_distinct": steady.distinct(), **files(directory / "data")}
        samples.append(point)
        say(json.dumps(point))
        return point

    def run_for(seconds: float, phase: str) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(args.sample, max(0.0, end - time.monotonic())))
            sample(phase)

    marks["start"] = time.monotonic()
    run_for(args.before, "before")
    marks["down"] = time.monotonic()
    flaky.down()
    run_for(args.minutes * 60, "outage")
    marks["up"] = time.monotonic()
    at_restore = sum(l.acked_count for l in loaders)
    backlog = at_restore - flaky.distinct()
    flaky.up()
    while flaky.distinct() < at_restore:
        time.sleep(0.2)
        if time.monotonic() - marks["up"] > 3600:
            break
    marks["drained"] = time.monotonic()
    sample("drained")
    run_for(args.after, "after")
    marks["end"] = time.monotonic()
    for loader in loaders:
        loader.stop()
    total = sum(l.acked_count for l in loaders)
    deadline = time.monotonic() + 120
    while (flaky.distinct() < total or steady.distinct() < total) and time.monotonic() < deadline:
        time.sleep(0.2)
    code = collector.stop(timeout=30)

    def ingest(a: str, b: str) -> float:
        start, end = marks[a], marks[b]
        return sum(n for l in loaders for at, n in l.acks if start <= at < end) / (end - start)

    outage = [s for s in samples if s["phase"] == "outage"]
    outage_rss = [s["rss_mb"] for s in outage]
    growth = (max(outage_rss) / outage_rss[0] - 1) if outage else None  # the peak, not the last: a sawtooth shows
    memory_judged = window < args.before
    drain_seconds = marks["drained"] - marks["up"]
    summary = {
        "outage_minutes": args.minutes,
        "offered_events_per_s": args.rate,
        "ingest_before": round(ingest("start", "down")),
        "ingest_during_outage": round(ingest("down", "up")),
        "ingest_while_draining": round(ingest("up", "drained")),
        "ingest_after": round(ingest("drained", "end")),
        "rss_mb_before": samples[0]["rss_mb"],
        "rss_mb_outage_min_max": [min(outage_rss), max(outage_rss)] if outage_rss else None,
        "rss_mb_end": samples[-1]["rss_mb"],
        "rss_mb_outage_first_last": [outage[0]["rss_mb"], outage[-1]["rss_mb"]] if outage else None,
        "rss_peak_growth_during_outage": f"{growth:+.1%}" if growth is not None else None,
        "rss_main_mb_outage_first_last": [outage[0]["rss_main_mb"], outage[-1]["rss_main_mb"]] if outage else None,
        "rss_writer_mb_outage_first_last": [outage[0]["rss_writer_mb"], outage[-1]["rss_writer_mb"]] if outage else None,
        "dedup_ids_outage_first_last": [outage[0]["dedup_ids"], outage[-1]["dedup_ids"]] if outage else None,
        "memory_flat": (abs(growth) < 0.10 if memory_judged else "not judged: the dedup window is not shorter than"
                        " the load before the outage") if growth is not None else None,
        "backlog_events": backlog,
        "db_mb_at_restore": round(max(s["db"] for s in samples if s["phase"] == "outage") / 2**20, 1) if outage_rss else None,
        "wal_mb_max": round(max(s["db_wal"] for s in samples) / 2**20, 1),
        "drain_seconds": round(drain_seconds, 1),
        "drain_events_per_s": round(backlog / drain_seconds) if drain_seconds else None,
        "drain_over_ingest": round((backlog / drain_seconds) / max(1, ingest("up", "drained")), 2) if drain_seconds else None,
        "acknowledged": total,
        "lost_flaky": total - flaky.distinct(),
        "lost_steady": total - steady.distinct(),
        "order_violations": flaky.order_violations + steady.order_violations,
        "duplicates_raw": flaky.duplicates + steady.duplicates,
        "client_answers": statuses(loaders),
        "clean_stop_exit_code": code,
    }
    steady.close()
    flaky.close()
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")
    if args.json:
        print(json.dumps({"summary": summary, "samples": samples}))
    ok = summary["lost_flaky"] == 0 and summary["lost_steady"] == 0 and summary["order_violations"] == 0
    ok = ok and summary["memory_flat"] is not False
    say("PASS" if ok else "FAIL")
    if args.dir is None:
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
