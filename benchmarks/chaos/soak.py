"""A soak: steady load for a long time; does anything grow that should not?

    python -m benchmarks.chaos.soak                                  # 30 minutes (the long run)
    python -m benchmarks.chaos.soak --minutes 3 --retention 30s --dedup-window 30s

Steady load at --rate events/s to two destinations, with short storage.retention and
storage.dedup_window so that retention applies within the run (events stay at least the dedup
window). Sampled every --sample seconds: RSS, the database file, the WAL, and how many events the
log holds. Judged on (targets from the issue): RSS growth under 10% from the end of the warm-up
(the first fifth of the run, or longer: until retention has had a minute to apply, but at most
half the run) to the end; the WAL bounded; the database size stable once retention applies (its
spread over the last third of the run under 25% of its mean).
"""

from __future__ import annotations

import argparse
import shutil
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.chaos.common import (
    CollectorProcess, CountingReceiver, Loader, files, log_span, machine, rss_kb, say, statuses,
)
from collector.config.units import Duration

WRITE_KEY = "wk_soak"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=int, default=2000, help="events per second offered")
    parser.add_argument("--retention", default="2m", help="storage.retention")
    parser.add_argument("--dedup-window", default="2m", help="storage.dedup_window (retention keeps events this long too)")
    parser.add_argument("--sample", type=float, default=15, help="seconds between samples")
    parser.add_argument("--pad", type=int, default=500)
    parser.add_argument("--dir", default=None, help="working directory, kept (default: a temporary one, removed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="soak-"))
    receivers = [CountingReceiver(keep_ids=False), CountingReceiver(keep_ids=False)]
    destination = {"type": "segment", "write_key": "wk_down", "batch": {"max_wait": 0.1, "max_events": 500}}
    collector = CollectorProcess(directory, {
        "storage": {"min_free_bytes": 0, "retention": args.retention, "dedup_window": args.dedup_window},
        "sources": {"app": {"write_key": WRITE_KEY}},
        "destinations": {f"d{i}": {**destination, "endpoint": r.url} for i, r in enumerate(receivers)},
    }).start()
    pid = collector.proc.pid
    clients, batch = 4, 50
    interval = clients * batch / args.rate
    keep = max(Duration.parse(args.retention), Duration.parse(args.dedup_window))  # how long events stay
    say(f"soak: {args.minutes} min at {args.rate} events/s, retention {args.retention}, dedup window"
        f" {args.dedup_window}; {machine()}; in {directory}")
    loaders = [Loader(collector.port, WRITE_KEY, f"s{i}", batch=batch, pad=args.pad, users=25, retry=True,
                      retry_after=0.5, interval=interval, keep_ids=False) for i in range(clients)]
    for loader in loaders:
        loader.start()
    started = time.monotonic()
    end = started + args.minutes * 60
    samples = []
    while time.monotonic() < end:
        time.sleep(min(args.sample, max(0.0, end - time.monotonic())))
        low, high = log_span(directory / "data")
        point = {"t": round(time.monotonic() - started), "acked": sum(l.acked_count for l in loaders),
                 "delivered": min(r.delivered for r in receivers), "rss_mb": round(rss_kb(pid) / 1024, 1),
                 "events_in_log": high - low + 1 if high else 0, **files(directory / "data")}
        samples.append(point)
        say(json.dumps(point))
    for loader in loaders:
        loader.stop()
    total = sum(l.acked_count for l in loaders)
    deadline = time.monotonic() + 120
    while min(r.delivered for r in receivers) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    code = collector.stop(timeout=30)

    duration = args.minutes * 60
    warm = [s for s in samples if s["t"] >= max(duration / 5, min(keep + 60, duration / 2))] or samples
    last_third = [s for s in samples if s["t"] >= duration * 2 / 3] or samples[-1:]
    rss_start, rss_end = warm[0]["rss_mb"], max(s["rss_mb"] for s in last_third)
    db_sizes = [s["db"] for s in last_third]
    db_mean = statistics.mean(db_sizes)
    summary = {
        "minutes": args.minutes,
        "offered_events_per_s": args.rate,
        "ingested_events_per_s": round(total / duration),
        "acknowledged": total,
        "delivered_each": [r.delivered for r in receivers],
        "lost": total - min(r.delivered for r in receivers),
        "order_violations": sum(r.order_violations for r in receivers),
        "rss_mb_after_warmup": rss_start,
        "rss_mb_end": rss_end,
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "wal_mb_max": round(max(s["db_wal"] for s in samples) / 2**20, 1),
        "db_mb_last_third_min_mean_max": [round(min(db_sizes) / 2**20, 1), round(db_mean / 2**20, 1), round(max(db_sizes) / 2**20, 1)],
        "db_spread_last_third_pct": round(100 * (max(db_sizes) - min(db_sizes)) / db_mean, 1) if db_mean else None,
        "events_in_log_end": samples[-1]["events_in_log"],
        "events_kept_expected": round(args.rate * keep),
        "client_answers": statuses(loaders),
        "clean_stop_exit_code": code,
    }
    for receiver in receivers:
        receiver.close()
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")
    if args.json:
        print(json.dumps({"summary": summary, "samples": samples}))
    checks = {
        "nothing lost": summary["lost"] == 0,
        "order kept": summary["order_violations"] == 0,
        "RSS growth < 10%": summary["rss_growth_pct"] < 10,
        "WAL < 64 MB": summary["wal_mb_max"] < 64,
        "db size stable (spread < 25%)": (summary["db_spread_last_third_pct"] or 0) < 25,
    }
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if args.dir is None:
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
