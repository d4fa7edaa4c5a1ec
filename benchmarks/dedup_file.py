"""The dedup store's cost per new id, with N ids already in the window (a diagnostic, not a
scenario of `python -m benchmarks`); also the time to open it (loading the index into memory).

What the log writer process does for each event: look its messageId up (in chunks of 256, as the
writer does), record it, commit about once a second. Run for 20 s after a prefill of N random ids,
with the file's own `synchronous=NORMAL` or with `off`:

    python -m benchmarks.dedup_file normal 2000000
    python -m benchmarks.dedup_file off 2000000

--spread gives the prefilled ids received times spread over the window, as in a collector that
has run for a day (the file then has a table per quarter of the window); --crash removes the
snapshot a clean stop leaves, so that the open loads every id from the file, as after a crash.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from collector.log.dedup import SNAPSHOT_FILE, DedupStore
from collector.log.schema import open_writer

WINDOW_MS = 86_400_000
SOURCE = "bench"


def prefill(directory: str, ids: int, spread: bool) -> None:
    log = open_writer(directory, "full")
    store = DedupStore(directory, WINDOW_MS)
    store.open(log)
    now = int(time.time() * 1000)
    for start in range(0, ids, 100_000):
        count = min(100_000, ids - start)
        # Oldest first, as they would have come; the oldest a minute inside the window.
        received = now - (WINDOW_MS - 60_000) * (ids - start) // ids if spread else now
        store.record([(SOURCE, str(uuid.uuid4()), received) for _ in range(count)], start + count)
        store.commit()
    store.close()
    log.close()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


def measure(directory: str, sync: str, seconds: float) -> float:
    log = open_writer(directory, "full")
    store = DedupStore(directory, WINDOW_MS)
    before, opening = rss_mb(), time.perf_counter()
    store.open(log)
    print(f"open: {time.perf_counter() - opening:.1f} s, index in memory {rss_mb() - before:.0f} MB")
    if sync == "off":
        store.conn.execute("COMMIT")
        store.conn.execute("PRAGMA synchronous = OFF")
        store.conn.execute("BEGIN")
    started, done, seq = time.perf_counter(), 0, 10**9
    while time.perf_counter() - started < seconds:
        now = int(time.time() * 1000)
        ids = [str(uuid.uuid4()) for _ in range(1000)]
        for i in range(0, len(ids), 256):
            store.seen(SOURCE, ids[i : i + 256], now - WINDOW_MS)
        seq += len(ids)
        store.record([(SOURCE, m, now) for m in ids], seq)
        store.commit_if_due()
        done += len(ids)
    elapsed = time.perf_counter() - started
    store.close()
    log.close()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sync", choices=["normal", "off"])
    parser.add_argument("prefill", type=int)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--spread", action="store_true", help="prefilled ids received over the whole window")
    parser.add_argument("--crash", action="store_true", help="open without the clean stop's snapshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as directory:
        prefill(directory, args.prefill, args.spread)
        if args.crash:
            os.unlink(os.path.join(directory, SNAPSHOT_FILE))
        size = os.path.getsize(os.path.join(directory, "dedup.db"))
        rate = measure(directory, args.sync, args.seconds)
    print(f"sync {args.sync}, {args.prefill:,} ids in the window ({size / max(args.prefill, 1):.0f} bytes/id): "
          f"{rate:,.0f} new ids/s ({1e6 / rate:.1f} us/id)")


if __name__ == "__main__":
    main()
