"""The messageIds seen within the dedup window: an index in memory, kept on disk as an
append-only file (`dedup.db`).

Why not an index on the log, or a file indexed by messageId: messageIds are random, so each new id
lands on a different page of such an index, and every commit rewrites most of its pages. Measured
on a 2-vCPU VM: raw SQLite inserts fell from 81k to 20k rows/s with an index on the log, and a
dedup file indexed by id cost 25 us per new id when empty and 60 us once it held 2M ids (it no
longer fit its page cache).

So the lookups go to an index in memory (an in-memory SQLite database: a B-tree in C, about 40
bytes an id), and the disk only receives the new ids in arrival order, which is sequential
writing. Each id is kept as a 128-bit fingerprint of (source, messageId), split in two integers:
the first is the index's key, the second confirms a hit. Two different ids would have to agree
on all 128 bits to be taken for one another; with 5 million ids in the window the chance of that
is about 1e-25.

The file is never fsync'ed (WAL, synchronous=NORMAL: consistent through a crash or power loss,
but it may lose its last commits) and is committed about once a second, after the log's own
commit. It is a cache that can always be rebuilt: it records up to which log `seq` it holds the
ids (`covered_seq`, written in the same transaction as the ids), and on opening, the ids of every
later event still in the window are read back from the log. So a lost or damaged dedup file costs
a rebuild, never an event and never a missed duplicate.

At a clean stop the index in memory is copied to `dedup.snapshot`, which the next start reads
back once instead of loading every id from the file again.

On disk, ids are kept in one table per time span (a quarter of the window): ids older than the
window go by dropping whole tables, not row by row. In memory they are one table keyed by
fingerprint, so that a lookup is one probe whatever the number of spans: with a table per span in
memory too, a lookup probed every live span, and cost 6.4 us an id with the five spans of a full
window against 0.8 us with one. Ids older than the window are swept from memory a slice of the
fingerprint range at a time, a slice or more per commit (see EXPIRY_SLICES); until then a lookup
skips them by their time.

The memory is bounded by `storage.dedup_max_ids` as well as by the window: once the index holds
more ids, the window in force is shortened (`forget_before_ms`, kept in the file) so that about 90%
of them remain, estimated from the received times of a sample of the index (fingerprints are
uniform, so a slice of their range is a random sample); the regular sweep then removes the rest.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import sys
import time
from hashlib import blake2b
from struct import Struct

DEDUP_FILE = "dedup.db"
# The in-memory index as it was at the last clean stop, read back at the next start instead of
# being rebuilt from dedup.db (which costs about 0.9 s per million ids).
SNAPSHOT_FILE = "dedup.snapshot"
# Commit the dedup file at least this often (seconds), or after this many ids.
COMMIT_INTERVAL = 1.0
COMMIT_IDS = 200_000
_REBUILD_CHUNK = 50_000
# A catch-up over at least this many events is announced in the log.
_ANNOUNCE_REBUILD = 100_000
# SQLite's default limit on the parameters of one statement is 32,766.
_LOOKUP_CHUNK = 10_000
# The in-memory index is swept of ids older than the window in this many slices of the fingerprint
# range, one per commit (about one a second) for a window of at least about 21 minutes: a slice of
# 5M ids is about 20,000 rows, a few ms. A shorter window sweeps more slices per commit, so that a
# whole sweep takes at most a span.
EXPIRY_SLICES = 256
_SLICE_WIDTH = 2**64 // EXPIRY_SLICES
# PRAGMA user_version of the file (1 was the first dedup file, keyed by messageId).
_FORMAT = 2
_TWO_INT64 = Struct("<qq").unpack
# When the index outgrows max_ids, the window is shortened to keep this share of them, so that it
# is not shortened again at every commit while the sweep catches up.
_KEEP_AFTER_SHORTENING = 0.9
# Ids whose received times estimate where to shorten the window (a sample of the index).
_SAMPLE_IDS = 4096


def dedup_path(directory: str) -> str:
    return os.path.join(directory, DEDUP_FILE)


def _table(span: int) -> str:
    return f"ids_{span}"


def fingerprint(source: str, message_id: str) -> tuple[int, int]:
    """128 bits of (source, messageId) as two signed 64-bit integers (SQLite's INTEGER)."""
    return _TWO_INT64(blake2b(f"{len(source)}:{source}{message_id}".encode("utf-8", "surrogatepass"), digest_size=16).digest())


class DedupStore:
    def __init__(self, directory: str, window_ms: int, max_ids: int = 0) -> None:
        self.path = dedup_path(directory)
        self.snapshot_path = os.path.join(directory, SNAPSHOT_FILE)
        self.window_ms = max(1, int(window_ms))
        self.max_ids = max(0, int(max_ids))  # 0: bounded by the window alone
        # Ids received at or before this time (ms) are forgotten although still in the window,
        # because the index reached max_ids. 0 while it never has.
        self.forget_before_ms = 0
        self._slices_until_estimate = 0  # the sweep's slices to go before the window may be shortened again
        self.notes: list[str] = []  # for the collector's log, taken by the writer
        self.span_ms = max(1, self.window_ms // 4)
        self.conn: sqlite3.Connection | None = None  # the file
        self.index: sqlite3.Connection | None = None  # the same ids, in memory, keyed by fingerprint
        self.spans: list[int] = []  # the file's live span numbers, ascending
        # Ids in the index (about 40 bytes of memory each); an id sent again after the window replaces
        # its row but is counted twice until the next start.
        self.ids = 0
        self._next_slice = 0  # the slice of the fingerprint range the next expiry sweeps
        self._slices_per_commit = max(1, math.ceil(EXPIRY_SLICES * COMMIT_INTERVAL * 1000 / self.span_ms))
        self.covered_seq = 0
        self._file_id = 0  # names the dedup.db a snapshot belongs to (see _open_file)
        self._pending = 0
        self._last_commit = time.monotonic()

    # -- opening -------------------------------------------------------------------------------------

    def open(self, log: sqlite3.Connection) -> int:
        """Open (creating or, if damaged, recreating) the file, load its ids into memory, then
        add the ids of the log's events after ``covered_seq``. Returns how many were read back
        from the log."""
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
        for path in (self.path, self.path + "-wal", self.path + "-shm", self.snapshot_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _open_file(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn = conn
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # It is the file's only connection: each automatic checkpoint completes and the WAL starts
        # over, so the WAL stays near 1,000 pages (SQLite's default), and is cut back to 4 MB after
        # a commit that made it larger (a rebuild).
        conn.execute("PRAGMA wal_autocheckpoint = 1000")
        conn.execute("PRAGMA journal_size_limit = 4194304")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
        row = conn.execute("SELECT value FROM meta WHERE key = 'covered_seq'").fetchone()
        self.covered_seq = int(row[0]) if row else 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'forget_before_ms'").fetchone()
        self.forget_before_ms = int(row[0]) if row and self.max_ids else 0
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version != _FORMAT:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name <> 'meta'").fetchone():
                raise sqlite3.DatabaseError(f"{self.path} is of an earlier format")  # rebuilt from the log
            conn.execute(f"PRAGMA user_version = {_FORMAT}")
        # Names this file, so that a snapshot is only ever read back beside the file it was taken from.
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('file_id', ?)", (secrets.randbits(62),))
        (self._file_id,) = conn.execute("SELECT value FROM meta WHERE key = 'file_id'").fetchone()
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ids\\_%' ESCAPE '\\'")
        on_disk = sorted(int(name[4:]) for (name,) in names)
        since = self.since_ms(int(time.time() * 1000))
        marks = self._read_snapshot()  # span -> the file's last rowid the snapshot holds
        if marks is None:
            self.index = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            marks = {}
        # Never rolled back: after any failure the whole store is closed and loaded again.
        self.index.execute("PRAGMA journal_mode = OFF")
        self.index.execute("CREATE TABLE IF NOT EXISTS ids (fp INTEGER PRIMARY KEY, chk INTEGER NOT NULL,"
                           " received INTEGER NOT NULL)")
        self.spans = on_disk
        if on_disk:
            # Loaded by SQLite itself, the file attached to the in-memory database: a row at a time
            # through Python took 1.8 us an id (9 s at start for 5M ids). Every span in one sorted
            # stream: in fingerprint order the B-tree is built by appending instead of splitting
            # pages, and of an id recorded twice (sent again after the window) the newest time wins.
            self.index.execute("ATTACH DATABASE ? AS disk", (self.path,))
            try:
                spans = " UNION ALL ".join(
                    f"SELECT fp, chk, received FROM disk.{_table(span)} WHERE received > {int(since)}"
                    f" AND rowid > {int(marks.get(span, 0))}" for span in on_disk
                )
                self.index.execute(f"INSERT OR REPLACE INTO main.ids (fp, chk, received) {spans} ORDER BY fp, received")
            finally:
                self.index.execute("DETACH DATABASE disk")
        (self.ids,) = self.index.execute("SELECT count(*) FROM main.ids").fetchone()
        # An in-memory database's pages stay dirty for good, and each COMMIT walks all of them:
        # committed after every group, the cost per id grew with the index (3.6 us at 1M ids,
        # 11.8 us at 4M). So its transaction spans about a second, like the file's.
        self.index.execute("BEGIN")
        conn.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()

    def _create_span(self, span: int) -> None:
        assert self.conn is not None
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {_table(span)} (fp INTEGER NOT NULL, chk INTEGER NOT NULL,"
                          " received INTEGER NOT NULL)")
        self.spans.append(span)
        self.spans.sort()

    def _catch_up(self, log: sqlite3.Connection) -> int:
        since = self.since_ms(int(time.time() * 1000))
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
        """Close; with ``commit`` (a clean stop), commit and leave a snapshot of the index."""
        conn, self.conn = self.conn, None
        index, self.index = self.index, None
        try:
            if conn is not None and commit and conn.in_transaction:
                conn.execute("COMMIT")
                if index is not None:
                    self._write_snapshot(conn, index)
        except (sqlite3.Error, OSError):
            pass  # e.g. a full disk: the ids not committed are read back from the log at next open
        finally:
            if index is not None:
                index.close()
            if conn is not None:
                conn.close()

    def _write_snapshot(self, conn: sqlite3.Connection, index: sqlite3.Connection) -> None:
        """Copy the index to SNAPSHOT_FILE with, per span, the file's last rowid it holds."""
        if index.in_transaction:
            index.execute("COMMIT")
        marks = [(span, conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {_table(span)}").fetchone()[0])
                 for span in self.spans]
        partial = self.snapshot_path + ".partial"
        if os.path.exists(partial):
            os.unlink(partial)
        snapshot = sqlite3.connect(partial)
        try:
            index.backup(snapshot)
            snapshot.execute("CREATE TABLE snapshot_marks (span INTEGER PRIMARY KEY, upto_rowid INTEGER NOT NULL)")
            snapshot.executemany("INSERT INTO snapshot_marks VALUES (?, ?)", marks)
            snapshot.execute("CREATE TABLE snapshot_of (file_id INTEGER NOT NULL)")
            snapshot.execute("INSERT INTO snapshot_of VALUES (?)", (self._file_id,))
            snapshot.commit()  # synchronous=FULL: on disk before the rename below
        finally:
            snapshot.close()
        os.replace(partial, self.snapshot_path)

    def _read_snapshot(self) -> dict[int, int] | None:
        """The index from SNAPSHOT_FILE (then removed) into ``self.index``, and its marks; None when
        there is none, or it is damaged, or it was taken beside another dedup.db."""
        if not os.path.exists(self.snapshot_path):
            return None
        index = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        try:
            snapshot = sqlite3.connect(f"file:{self.snapshot_path}?mode=ro", uri=True)
            try:
                snapshot.backup(index)
            finally:
                snapshot.close()
            (file_id,) = index.execute("SELECT file_id FROM snapshot_of").fetchone()
            index.execute("SELECT 1 FROM ids LIMIT 1")  # a snapshot of the earlier index (a table per span) has none
            marks = dict(index.execute("SELECT span, upto_rowid FROM snapshot_marks"))
            index.execute("DROP TABLE snapshot_of")
            index.execute("DROP TABLE snapshot_marks")
        except (sqlite3.Error, TypeError):  # damaged, or not a snapshot: rebuilt from the file
            file_id = None
        finally:
            os.unlink(self.snapshot_path)  # read once: the index moves on from here
        if file_id != self._file_id:
            index.close()
            return None
        self.index = index
        return marks

    # -- the hot path ---------------------------------------------------------------------------------

    def since_ms(self, received_ms: int) -> int:
        """The start of the window in force for an event received at ``received_ms``: the
        configured window, or less once max_ids shortened it."""
        return max(received_ms - self.window_ms, self.forget_before_ms)

    def seen(self, source: str, ids: list[str], since_ms: int) -> set[str]:
        """Which of ``ids`` this source sent after ``since_ms`` (received time)."""
        wanted = {fingerprint(source, m): m for m in ids}
        return {wanted[key] for key in self.seen_keys(list(wanted), since_ms)}

    def seen_keys(self, keys: list[tuple[int, int]], since_ms: int) -> set[tuple[int, int]]:
        """Which of these fingerprints were recorded after ``since_ms`` (received time)."""
        index = self.index
        assert index is not None
        wanted = set(keys)
        firsts = [fp for fp, _ in keys]
        found: set[tuple[int, int]] = set()
        for start in range(0, len(firsts), _LOOKUP_CHUNK):
            chunk = firsts[start : start + _LOOKUP_CHUNK]
            sql = f"SELECT fp, chk FROM ids WHERE fp IN ({','.join('?' * len(chunk))}) AND received > ?"
            found.update(hit for hit in index.execute(sql, (*chunk, since_ms)) if hit in wanted)  # both halves
        return found

    def record(self, rows: list[tuple[str, str, int]], upto_seq: int) -> None:
        """Remember (source, messageId, received ms) of events the log has committed, up to
        ``upto_seq``. Written to disk at the next commit."""
        self.record_keys([(*fingerprint(source, message_id), received) for source, message_id, received in rows], upto_seq)

    def record_keys(self, rows: list[tuple[int, int, int]], upto_seq: int) -> None:
        """record(), with each (source, messageId) already a fingerprint: (fp, chk, received ms)."""
        try:
            self._record(rows, upto_seq)
        except sqlite3.DatabaseError as error:
            self._give_up(error)
            raise

    def _give_up(self, error: sqlite3.DatabaseError) -> None:
        """Close after a failure, so that the next open starts over from the file and the log;
        a damaged file is thrown away first."""
        if isinstance(error, sqlite3.OperationalError):  # locked, full, unreadable: not damage
            self.close(commit=False)
        else:
            self.discard()

    def _record(self, rows: list[tuple[int, int, int]], upto_seq: int) -> None:
        conn, index = self.conn, self.index
        assert conn is not None and index is not None
        by_span: dict[int, list[tuple[int, int, int]]] = {}
        span_ms = self.span_ms
        for row in rows:
            by_span.setdefault(row[2] // span_ms, []).append(row)
        for span, span_rows in by_span.items():
            if span not in self.spans:
                self._create_span(span)
            conn.executemany(f"INSERT INTO {_table(span)} (fp, chk, received) VALUES (?, ?, ?)", span_rows)
        # A repeat sent again after the window is a new event: its newer time replaces the old.
        index.executemany("INSERT OR REPLACE INTO ids (fp, chk, received) VALUES (?, ?, ?)", rows)
        self.ids += len(rows)
        if upto_seq > self.covered_seq:
            self.covered_seq = upto_seq
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('covered_seq', ?)", (upto_seq,))
        self._pending += len(rows)

    def expire(self, since_ms: int, slices: int = EXPIRY_SLICES) -> int:
        """Remove from the index the ids received at or before ``since_ms`` in the next ``slices``
        slices of the fingerprint range; returns how many."""
        index = self.index
        assert index is not None
        removed = 0
        for _ in range(min(slices, EXPIRY_SLICES)):
            low = -(2**63) + self._next_slice * _SLICE_WIDTH
            cursor = index.execute("DELETE FROM ids WHERE fp BETWEEN ? AND ? AND received <= ?",
                                   (low, low + _SLICE_WIDTH - 1, since_ms))
            removed += cursor.rowcount
            self._next_slice = (self._next_slice + 1) % EXPIRY_SLICES
        self.ids -= removed
        return removed

    def _shorten_window(self, now_ms: int) -> None:
        """Forget early the oldest ids, so that about _KEEP_AFTER_SHORTENING of max_ids remain
        once the sweep has been round the whole index (until then, lookups skip them)."""
        index = self.index
        assert index is not None
        slices = min(EXPIRY_SLICES, max(1, math.ceil(_SAMPLE_IDS * EXPIRY_SLICES / max(1, self.ids))))
        low = -(2**63) + self._next_slice * _SLICE_WIDTH
        high = min(2**63 - 1, low + slices * _SLICE_WIDTH - 1)
        since = self.since_ms(now_ms)
        sample = sorted(received for (received,) in index.execute(
            "SELECT received FROM ids WHERE fp BETWEEN ? AND ? AND received > ?", (low, high, since)))
        if not sample:
            return
        forget = 1 - _KEEP_AFTER_SHORTENING * self.max_ids / self.ids
        self.forget_before_ms = max(self.forget_before_ms, sample[min(len(sample) - 1, int(forget * len(sample)))])
        self._slices_until_estimate = EXPIRY_SLICES
        assert self.conn is not None
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('forget_before_ms', ?)",
                          (self.forget_before_ms,))
        self.notes.append(
            f"the dedup index holds {self.ids} ids, more than storage.dedup_max_ids ({self.max_ids}): ids"
            f" received more than {(now_ms - self.forget_before_ms) / 1000:.0f} s ago are no longer checked"
            f" (storage.dedup_window is {self.window_ms / 1000:.0f} s); raise dedup_max_ids (about 40 bytes"
            f" of memory an id) or shorten dedup_window")

    def commit_if_due(self) -> None:
        if self._pending >= COMMIT_IDS or time.monotonic() - self._last_commit >= COMMIT_INTERVAL:
            self.commit()

    def commit(self) -> None:
        """Commit what was recorded (no fsync), drop the file's spans that left the window, and
        sweep the next slice(s) of the index."""
        try:
            self._commit()
        except sqlite3.DatabaseError as error:
            self._give_up(error)
            raise

    def _commit(self) -> None:
        conn, index = self.conn, self.index
        assert conn is not None and index is not None
        now = int(time.time() * 1000)
        if self.max_ids and self.ids > self.max_ids and self._slices_until_estimate <= 0:
            self._shorten_window(now)
        since = self.since_ms(now)
        for span in [s for s in self.spans if (s + 1) * self.span_ms <= since]:
            conn.execute(f"DROP TABLE IF EXISTS {_table(span)}")
            self.spans.remove(span)
        self.expire(since, slices=self._slices_per_commit)
        self._slices_until_estimate = max(0, self._slices_until_estimate - self._slices_per_commit)
        if conn.in_transaction:
            conn.execute("COMMIT")
        conn.execute("BEGIN")
        index.execute("COMMIT")
        index.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()
