"""The messageIds seen within the dedup window, in a file of their own (`dedup.db`).

Why not an index on the log: messageIds are random, so each event lands on a different page of
such an index; every commit then wrote (and fsync'ed) about one 4 KB index page per ~500-byte
event, and the index grew with the whole log, backlog included. Measured on a 2-vCPU VM: raw
SQLite inserts fell from 81k to 20k rows/s with it.

Here the ids go to a second SQLite file that is never fsync'ed at commit (WAL,
synchronous=NORMAL: it stays consistent through a crash or power loss, but may lose its last
commits) and is committed about once a second, after the log's own commit. It is a cache that can
always be rebuilt: it records up to which log `seq` it holds the ids (`covered_seq`, written in
the same transaction as the ids), and on opening, the ids of every later event still in the
window are read back from the log. So a lost or damaged dedup file costs a rebuild, never an
event and never a missed duplicate.

Ids are kept in one table per time span (a quarter of the window): lookups probe the few live
spans, and ids older than the window go by dropping whole tables, not row by row.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time

DEDUP_FILE = "dedup.db"
# Commit the dedup file at least this often (seconds), or after this many ids.
COMMIT_INTERVAL = 1.0
COMMIT_IDS = 200_000
_REBUILD_CHUNK = 50_000
# A catch-up over at least this many events is announced in the log.
_ANNOUNCE_REBUILD = 100_000


def dedup_path(directory: str) -> str:
    return os.path.join(directory, DEDUP_FILE)


def _table(span: int) -> str:
    return f"seen_{span}"


class DedupStore:
    def __init__(self, directory: str, window_ms: int) -> None:
        self.path = dedup_path(directory)
        self.window_ms = max(1, int(window_ms))
        self.span_ms = max(1, self.window_ms // 4)
        self.conn: sqlite3.Connection | None = None
        self.spans: list[int] = []  # live span numbers, ascending
        self.covered_seq = 0
        self._pending = 0
        self._last_commit = time.monotonic()

    # -- opening -------------------------------------------------------------------------------------

    def open(self, log: sqlite3.Connection) -> int:
        """Open (creating or, if damaged, recreating) the file, then add the ids of the log's
        events after ``covered_seq``. Returns how many were read back from the log."""
        try:
            self._open_file()
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):  # locked, full, unreadable: not damage
                self.close(commit=False)
                raise
            self.discard()
            self._open_file()
        return self._catch_up(log)

    def discard(self) -> None:
        """Throw the file away (it is damaged); the next open rebuilds it from the log."""
        self.close(commit=False)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def _open_file(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn = conn
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
        # It is the file's only connection: each automatic checkpoint completes and the WAL starts
        # over, so the WAL stays near 1,000 pages (SQLite's default), and is cut back to 4 MB after
        # a commit that made it larger (a rebuild).
        conn.execute("PRAGMA wal_autocheckpoint = 1000")
        conn.execute("PRAGMA journal_size_limit = 4194304")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
        row = conn.execute("SELECT value FROM meta WHERE key = 'covered_seq'").fetchone()
        self.covered_seq = int(row[0]) if row else 0
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'seen\\_%' ESCAPE '\\'")
        self.spans = sorted(int(name[5:]) for (name,) in names)
        conn.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()

    def _catch_up(self, log: sqlite3.Connection) -> int:
        since = int(time.time() * 1000) - self.window_ms
        added = 0
        (behind,) = log.execute("SELECT count(*) FROM events WHERE seq > ?", (self.covered_seq,)).fetchone()
        if behind >= _ANNOUNCE_REBUILD:
            # A new or lost dedup file beside a large log: this can take minutes, before the
            # collector accepts events. Said on stderr, which is the collector's log.
            print(json.dumps({"level": "warning", "logger": "collector.log.dedup",
                              "message": f"rebuilding {DEDUP_FILE}: reading back the ids of {behind} events from the log"}),
                  file=sys.stderr, flush=True)
        while True:
            rows = log.execute(
                "SELECT seq, source, message_id, received FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (self.covered_seq, _REBUILD_CHUNK),
            ).fetchall()
            if not rows:
                break
            fresh = [(source, message_id, received) for _, source, message_id, received in rows if received > since]
            self.record(fresh, rows[-1][0])
            added += len(fresh)
            self.commit()
        # A log whose newest events are gone (retention) may hold a higher sequence than its rows.
        row = log.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        if row and row[0] > self.covered_seq:
            self.record([], row[0])
            self.commit()
        return added

    def close(self, commit: bool = True) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if commit and conn.in_transaction:
                conn.execute("COMMIT")
        except sqlite3.Error:
            pass  # e.g. a full disk: the ids not committed are read back from the log at next open
        finally:
            conn.close()

    # -- the hot path ---------------------------------------------------------------------------------

    def seen(self, source: str, ids: list[str], since_ms: int) -> set[str]:
        """Which of ``ids`` this source sent after ``since_ms`` (received time)."""
        try:
            return self._seen(source, ids, since_ms)
        except sqlite3.DatabaseError as error:
            if not isinstance(error, sqlite3.OperationalError):
                self.discard()  # damaged: this group fails, the next one rebuilds the file
            raise

    def _seen(self, source: str, ids: list[str], since_ms: int) -> set[str]:
        conn = self.conn
        assert conn is not None
        found: set[str] = set()
        marks = ",".join("?" * len(ids))
        for span in self.spans:
            if (span + 1) * self.span_ms <= since_ms:
                continue  # the whole span is older than the window
            sql = (f"SELECT message_id FROM {_table(span)} WHERE source = ? AND received > ?"
                   f" AND message_id IN ({marks})")
            found.update(m for (m,) in conn.execute(sql, (source, since_ms, *ids)))
        return found

    def record(self, rows: list[tuple[str, str, int]], upto_seq: int) -> None:
        """Remember (source, messageId, received ms) of events the log has committed, up to
        ``upto_seq``. Written to disk at the next commit."""
        conn = self.conn
        assert conn is not None
        by_span: dict[int, list[tuple[str, str, int]]] = {}
        for row in rows:
            by_span.setdefault(row[2] // self.span_ms, []).append(row)
        for span, span_rows in by_span.items():
            if span not in self.spans:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_table(span)} (source TEXT NOT NULL, message_id TEXT NOT NULL,"
                    " received INTEGER NOT NULL, PRIMARY KEY (source, message_id)) WITHOUT ROWID"
                )
                self.spans.append(span)
                self.spans.sort()
            conn.executemany(
                f"INSERT OR REPLACE INTO {_table(span)} (source, message_id, received) VALUES (?, ?, ?)", span_rows
            )
        if upto_seq > self.covered_seq:
            self.covered_seq = upto_seq
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('covered_seq', ?)", (upto_seq,))
        self._pending += len(rows)

    def commit_if_due(self) -> None:
        if self._pending >= COMMIT_IDS or time.monotonic() - self._last_commit >= COMMIT_INTERVAL:
            self.commit()

    def commit(self) -> None:
        """Commit what was recorded (no fsync) and drop the spans that left the window."""
        conn = self.conn
        assert conn is not None
        oldest_live = (int(time.time() * 1000) - self.window_ms) // self.span_ms
        for span in [s for s in self.spans if s < oldest_live]:
            conn.execute(f"DROP TABLE IF EXISTS {_table(span)}")
            self.spans.remove(span)
        if conn.in_transaction:
            conn.execute("COMMIT")
        conn.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()
