"""The log writer process: the one SQLite connection that writes to the log.

`collector.log.writer.Writer` (in the collector's process) gathers every write of a moment into a
group and sends it here at once, with up to a few groups unanswered. This process takes every
group waiting in its pipe, writes them all in one transaction, commits (the fsync), and answers
each with what it wrote, in order. It has no event loop and no other thread. So the disk syncs
one commit while the next groups queue up, and neither side waits for the other to notice.

Why a process and not a thread: every SQLite call from a thread has to take the GIL back from the
busy event loop, and each time waits up to the interpreter's switch interval (5 ms). Measured on
a 2-vCPU VM under single-event load, a commit whose fsync took 1.6 ms alone took 7.5 ms to come
back to the loop, and staging the rows on the loop's own thread cost it 27 us per event. Here the
loop only encodes the group (a few us) and the writing runs beside it on the other core.

Frames on stdin (groups) and stdout (outcomes): a 4-byte big-endian length, then msgpack.
The process stops when stdin closes (the collector closed it, or the collector died: it never
outlives the collector by more than the commit in progress). It ignores SIGINT and SIGTERM: a
service manager sends those to the whole process group, and the collector decides when its
writer is done.

    python -m collector.log.writer_process DIRECTORY SYNC DEDUP_WINDOW_MS WAL_RESTART_BYTES
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import struct
import sys
import time
from typing import Any, BinaryIO

import msgspec

from collector.gc_tuning import tune_for_serving
from collector.log import schema
from collector.log.capacity import file_size
from collector.log.dedup import DedupStore, fingerprint

# Events are written in chunks of up to this many rows, one multi-row statement per chunk.
_CHUNK = 256
_LENGTH = struct.Struct(">I")
_READ_SIZE = 4 * 1024 * 1024
# Below this size the WAL is never restarted early for lack of free space.
_EARLY_RESTART_MIN_BYTES = 1024 * 1024
# A TRUNCATE checkpoint that finds another checkpoint running is tried again this many times.
_CHECKPOINT_ATTEMPTS = 5


class Group(msgspec.Struct, array_like=True):
    """Everything one transaction writes."""

    events: dict[str, list[tuple[str, str, int, bytes]]]  # source -> (source, messageId, received ms, body)
    cursors: dict[str, int]
    dead_letters: list[tuple[str, int, str, int, int, str, bytes]]
    statements: list[tuple[str, list[Any]]]
    scripts: list[str]  # each in a transaction of its own, after the group's


class Outcome(msgspec.Struct, array_like=True):
    """What became of a group."""

    error: str | None = None  # the group's transaction failed and was rolled back
    error_kind: str = ""  # "sqlite" or "os", so the collector can tell a full disk from a bug
    committed: dict[str, int] = {}  # source -> events inserted
    duplicates: dict[str, int] = {}  # source -> events dropped as already seen
    rowcounts: list[int] = []  # one per statement
    script_errors: list[str | None] = []  # one per script
    notes: list[str] = []  # warnings for the collector's log
    dedup_ids: int = -1  # ids in the dedup window's index (-1: the index is not open)
    dedup_window_ms: int = -1  # the window in force: shorter than configured once dedup_max_ids is reached


class Hello(msgspec.Struct, array_like=True):
    """The first frame: the file is open (error is None) or why it could not be."""

    error: str | None = None


def _insert_events_sql(count: int) -> str:
    return "INSERT INTO events (source, message_id, received, body) VALUES " + ",".join(["(?,?,?,?)"] * count)


_UPSERT_CURSOR = """
INSERT INTO cursors (destination, seq, updated) VALUES (?, ?, ?)
ON CONFLICT (destination) DO UPDATE SET seq = excluded.seq, updated = excluded.updated
"""
_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (destination, seq, source, received, failed, reason, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""


class LogWriter:
    """The writing side of the log file, one group at a time."""

    def __init__(self, conn: sqlite3.Connection, wal_path: str, dedup: DedupStore, wal_restart_bytes: int):
        self.conn = conn
        self.wal_path = wal_path
        self.dedup = dedup
        self.wal_restart_bytes = wal_restart_bytes
        self._inserted: list[tuple[int, int, int]] = []  # (fp, chk, received) of this transaction's events
        self._in_transaction: set[tuple[int, int]] = set()  # their fingerprints
        self._last_seq = 0

    def write(self, groups: list[Group]) -> list[Outcome]:
        """Write the groups in ONE transaction (one fsync for all): the collector sends a group as
        soon as it has one, and the groups that queued up while the last commit synced are
        written together. Each gets its own outcome; if the transaction fails, all of them fail."""
        outcomes = [Outcome() for _ in groups]
        self._inserted = []
        self._in_transaction = set()
        try:
            if self.dedup.conn is None:
                self.dedup.open(self.conn)  # after a failure: read back what it missed
            self.conn.execute("BEGIN IMMEDIATE")
            for group, outcome in zip(groups, outcomes):
                self._stage(group, outcome)
            self.conn.execute("COMMIT")
        except (sqlite3.Error, OSError, ValueError) as error:
            notes: list[str] = [note for outcome in outcomes for note in outcome.notes]
            self._rollback(notes)
            kind = "os" if isinstance(error, OSError) else "sqlite"
            outcomes = [Outcome(error=str(error), error_kind=kind) for _ in groups]
            outcomes[0].notes = notes
        else:
            self._remember_ids(outcomes[0])
        for group, outcome in zip(groups, outcomes):
            for script in group.scripts:
                outcome.script_errors.append(self._run_script(script))
        self._restart_wal_if_large(outcomes[-1])
        if self.dedup.index is not None:
            outcomes[-1].dedup_ids = self.dedup.ids
            now = int(time.time() * 1000)
            outcomes[-1].dedup_window_ms = now - self.dedup.since_ms(now)
        if self.dedup.notes:
            outcomes[-1].notes += self.dedup.notes
            self.dedup.notes = []
        return outcomes

    def _stage(self, group: Group, outcome: Outcome) -> None:
        conn = self.conn
        for source, rows in group.events.items():
            inserted = self._insert_events(source, rows)
            outcome.committed[source] = inserted
            outcome.duplicates[source] = len(rows) - inserted
        if group.dead_letters:
            conn.executemany(_INSERT_DEAD_LETTER, group.dead_letters)
        if group.cursors:
            now = int(time.time() * 1000)
            conn.executemany(_UPSERT_CURSOR, [(d, s, now) for d, s in group.cursors.items()])
        for sql, params in group.statements:
            cursor = conn.execute(sql, params)
            cursor.fetchall()
            outcome.rowcounts.append(cursor.rowcount)

    def _insert_events(self, source: str, rows: list[tuple[str, str, int, bytes]]) -> int:
        """Insert the events whose messageId this source has not sent within the dedup window
        (nor earlier in this group); returns how many were inserted."""
        unique: dict[str, tuple] = {}
        for row in rows:
            unique.setdefault(row[1], row)  # the first of repeats within the group wins
        fresh_rows = list(unique.values())
        inserted = 0
        conn = self.conn
        for start in range(0, len(fresh_rows), _CHUNK):
            chunk = fresh_rows[start : start + _CHUNK]
            keys = [fingerprint(source, row[1]) for row in chunk]
            # One window start for the chunk (its oldest event's), at most a few ms earlier than
            # each event's own: a negligible widening of the window, for one lookup per chunk.
            since = self.dedup.since_ms(min(row[2] for row in chunk))
            seen = self.dedup.seen_keys(keys, since)
            # Ids inserted earlier in this transaction (by another group) are not in the dedup
            # store yet: it hears of them after the commit.
            if self._in_transaction:
                seen.update(key for key in keys if key in self._in_transaction)
            if seen:
                kept = [(row, key) for row, key in zip(chunk, keys) if key not in seen]
                chunk, keys = [row for row, _ in kept], [key for _, key in kept]
            if chunk:
                cursor = conn.execute(_insert_events_sql(len(chunk)), [value for row in chunk for value in row])
                self._last_seq = cursor.lastrowid or self._last_seq
                self._inserted.extend((fp, chk, row[2]) for (fp, chk), row in zip(keys, chunk))
                self._in_transaction.update(keys)
                inserted += len(chunk)
        return inserted

    def _remember_ids(self, outcome: Outcome) -> None:
        """After the log's commit: the new ids go to the dedup file. If that fails, the file is
        closed and reopened at the next group, reading back from the log what it missed."""
        try:
            self.dedup.record_keys(self._inserted, self._last_seq)
            self.dedup.commit_if_due()
        except (sqlite3.Error, OSError) as error:
            outcome.notes.append(f"dedup file: {error}; it will be caught up from the log")
            self.dedup.close(commit=False)

    def _rollback(self, notes: list[str]) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error as error:  # e.g. SQLite already rolled back after a full disk
                notes.append(f"rollback failed: {error}")

    def _run_script(self, script: str) -> str | None:
        """For pragmas such as incremental_vacuum that do their work step by step: only
        executescript steps them to the end."""
        conn = self.conn
        try:
            conn.executescript(f"BEGIN IMMEDIATE; {script}; COMMIT;")
        except (sqlite3.Error, OSError) as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return str(error)
        return None

    def _free_bytes(self) -> int:
        try:
            stat = os.statvfs(self.wal_path.rpartition("/")[0] or ".")
        except OSError:
            return 0
        return stat.f_bavail * stat.f_frsize

    def _restart_wal_if_large(self, outcome: Outcome) -> None:
        """Under steady load the WAL never empties by itself: a PASSIVE checkpoint (maintenance
        runs one every few seconds, on its own connection) copies frames back while commits keep
        appending, and SQLite starts the WAL over only when a write begins after *every* frame was
        copied. So once the WAL has grown past wal_restart_bytes, the writer, between two commits,
        runs a TRUNCATE checkpoint itself: it copies the few frames the passive one has not yet,
        and empties the file. Writes wait for it, briefly.

        On a disk running out of room it does so much earlier, once the WAL passes a quarter of the
        free space: a checkpoint needs up to the WAL's size of free space (the pages it copies may
        extend the database file), so a WAL that had outgrown the free space could never be
        checkpointed again, and the log would stay full even after the operator freed some room."""
        wal = file_size(self.wal_path)
        if wal < self.wal_restart_bytes and (wal < _EARLY_RESTART_MIN_BYTES or wal < self._free_bytes() // 2):
            return
        for attempt in range(_CHECKPOINT_ATTEMPTS):
            try:
                busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as error:
                outcome.notes.append(f"WAL checkpoint failed: {error}")
                return
            if not busy:
                return
            # Another checkpoint (maintenance's passive one) was running: it will be done soon.
            time.sleep(0.001 * (attempt + 1))
        outcome.notes.append("WAL checkpoint could not finish (another checkpoint or a reader was busy); will retry")


class FrameReader:
    """Frames from a pipe: blocks for the first, then takes every complete frame already there."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False

    def next_frames(self) -> list[bytes]:
        """At least one frame, or [] at the end of the stream."""
        while not (frames := self._complete_frames()):
            if self.eof or not self._read():
                return []
        # More may already be waiting (the collector sent them while the last commit synced): take
        # what is in the pipe now, once. Reading on while more keeps coming would hold back the
        # groups already here (a partial frame stays buffered for the next round).
        if select.select([self.fd], [], [], 0)[0] and self._read():
            frames += self._complete_frames()
        return frames

    def _read(self) -> bool:
        chunk = os.read(self.fd, _READ_SIZE)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def _complete_frames(self) -> list[bytes]:
        frames, buffer, start = [], self.buffer, 0
        while len(buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, start)
            end = start + _LENGTH.size + length
            if end > len(buffer):
                break
            frames.append(bytes(buffer[start + _LENGTH.size : end]))
            start = end
        del buffer[:start]
        return frames


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def serve(directory: str, sync: str, dedup_window_ms: int, dedup_max_ids: int, wal_restart_bytes: int,
          stdin: BinaryIO, stdout: BinaryIO) -> None:
    encoder = msgspec.msgpack.Encoder()
    try:
        conn = schema.open_writer(directory, sync)
    except (sqlite3.Error, OSError, RuntimeError) as error:
        stdout.write(frame(encoder.encode(Hello(error=str(error)))))
        stdout.flush()
        return
    dedup = DedupStore(directory, dedup_window_ms, dedup_max_ids)
    try:
        dedup.open(conn)
    except (sqlite3.Error, OSError):
        dedup.close(commit=False)  # e.g. a full disk: tried again before each group
    writer = LogWriter(conn, schema.db_path(directory) + "-wal", dedup, wal_restart_bytes)
    tune_for_serving()
    stdout.write(frame(encoder.encode(Hello())))
    stdout.flush()
    decoder = msgspec.msgpack.Decoder(Group)
    reader = FrameReader(stdin.fileno())
    try:
        while payloads := reader.next_frames():
            outcomes = writer.write([decoder.decode(payload) for payload in payloads])
            stdout.write(b"".join(frame(encoder.encode(outcome)) for outcome in outcomes))
            stdout.flush()
    finally:
        try:
            dedup.close()
        finally:
            conn.close()


def main(argv: list[str]) -> int:
    directory, sync, dedup_window_ms, dedup_max_ids, wal_restart_bytes = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        serve(directory, sync, int(dedup_window_ms), int(dedup_max_ids), int(wal_restart_bytes),
              sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the collector is gone
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
