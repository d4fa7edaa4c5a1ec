"""Raw SQLite insert throughput: the ceiling for events committed per second on this disk.

sqlite3 (no asyncio, no aiosqlite), WAL mode, synchronous=FULL, 1,000 rows per transaction, rows
shaped like the collector's stored events (about 400 bytes of JSON each); `--index` adds the
(source, message_id) index that dedup needs.

    python -m benchmarks.baselines.sqlite_insert --seconds 10 --dir /tmp
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import msgspec

from benchmarks.payloads import track_event


def stored_event(i: int) -> bytes:
    """An event as the collector stores it: the SDK's fields plus the server's."""
    event = track_event(i)
    event.update(
        messageId=f"{i:032x}",
        receivedAt="2024-05-01T12:00:00.123Z",
        originalTimestamp="2024-05-01T12:00:00.000Z",
        sentAt="2024-05-01T12:00:00.000Z",
    )
    event["context"]["ip"] = "127.0.0.1"
    return msgspec.json.encode(event)


def run(seconds: float, directory: Path, rows_per_commit: int = 1000, sync: str = "FULL",
        index: bool = False) -> dict:
    path = directory / "sqlite-baseline.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync}")
    db.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, source TEXT NOT NULL, message_id TEXT NOT NULL,"
        " received_ms INTEGER NOT NULL, raw BLOB NOT NULL)"
    )
    if index:
        # What dedup by messageId needs; random ids (as SDKs send) land all over the index.
        db.execute("CREATE INDEX events_by_message_id ON events (source, message_id)")
    template = [stored_event(i) for i in range(rows_per_commit)]
    rows = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        ids = os.urandom(16 * rows_per_commit).hex()
        batch = [("bench", ids[32 * k : 32 * k + 32], 1714564800123, template[k])
                 for k in range(rows_per_commit)]
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events (source, message_id, received_ms, raw) VALUES (?, ?, ?, ?)", batch
        )
        db.execute("COMMIT")
        rows += rows_per_commit
    elapsed = time.perf_counter() - start
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {
        "rows": rows,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed,
        "row_bytes": sum(map(len, template)) / len(template),
        "rows_per_commit": rows_per_commit,
        "synchronous": sync,
        "message_id_index": index,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--dir", type=Path, default=None, help="on the disk the collector uses")
    parser.add_argument("--rows-per-commit", type=int, default=1000)
    parser.add_argument("--sync", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--index", action="store_true", help="with an index on (source, message_id)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        print(json.dumps(run(args.seconds, Path(d), args.rows_per_commit, args.sync, args.index)))


if __name__ == "__main__":
    main()
