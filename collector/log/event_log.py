"""The durable log: what ingestion appends to and what every dispatcher reads from.

Three connections to one WAL-mode SQLite file: the writer (group commit, every write, in the log
writer process), the reader (dispatchers' range scans; WAL readers never block the writer) and the
maintenance connection (checkpoints and size queries, so that a checkpoint never sits inside a
commit).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Callable

import aiosqlite

from collector.config.model import StorageConfig
from collector.log import schema
from collector.log.capacity import CapacityGuard
from collector.log.errors import StorageUnavailable
from collector.log.writer import CommitStats, EventRow, Writer

log = logging.getLogger(__name__)

StoredRow = tuple[int, str, int, bytes]  # (seq, source, received_ms, body)

# Measure the storage again once this many bytes of events were appended since the last measure.
_RECHECK_BYTES = 64 * 1024


class EventLog:
    def __init__(self, config: StorageConfig, on_commit: Callable[[CommitStats], None] = lambda s: None) -> None:
        self.config = config
        self.capacity = CapacityGuard(config.path, config.max_bytes, config.min_free_bytes)
        self._on_commit_hook = on_commit
        self._reader_conn: aiosqlite.Connection | None = None
        self.maintenance_conn: aiosqlite.Connection | None = None
        self.writer: Writer | None = None
        self._new_events = asyncio.Event()
        self.last_seq = 0

    async def open(self) -> None:
        cfg = self.config
        self.writer = Writer(
            cfg.path,
            cfg.sync,
            dedup_window_ms=int(cfg.dedup_window * 1000),
            dedup_max_ids=cfg.dedup_max_ids,
            on_commit=self._committed,
            on_failure=self._failed,
        )
        await self.writer.open()
        self._reader_conn = await schema.open_reader(cfg.path, cfg.sync)
        self.maintenance_conn = await schema.open_reader(cfg.path, cfg.sync)
        self.last_seq = await self._max_seq()
        self.capacity.check()

    async def close(self) -> None:
        if self.writer:
            await self.writer.stop()
        for conn in (self._reader_conn, self.maintenance_conn):
            if conn is not None:
                await conn.close()

    # -- ingestion ----------------------------------------------------------------------------

    async def append(self, source: str, rows: list[EventRow]) -> None:
        """Commit events durably. Raises StorageUnavailable when they could not be committed."""
        capacity = self.capacity
        # Maintenance measures every second; under load that is megabytes, more than a small
        # storage.max_bytes or min_free_bytes. So measure again after every 64 KB of events too
        # (a few stat calls).
        capacity.unchecked_bytes += sum(len(row[3]) for row in rows)
        if capacity.unchecked_bytes >= _RECHECK_BYTES:
            capacity.check()
        if not capacity.accepting:
            raise StorageUnavailable(capacity.reason)
        assert self.writer is not None
        await self.writer.append(source, rows)

    def _committed(self, stats: CommitStats) -> None:
        if any(stats.committed.values()):
            # Wake every dispatcher waiting for news; each then reads past its own position.
            event, self._new_events = self._new_events, asyncio.Event()
            event.set()
        self._on_commit_hook(stats)

    def _failed(self, error: Exception) -> None:
        if isinstance(error, sqlite3.Error) and "full" in str(error).lower() or isinstance(error, OSError):
            self.capacity.mark_full(f"a commit failed: {error}")

    # -- delivery -----------------------------------------------------------------------------

    async def wait_for_new_events(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._new_events.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def read_after(self, seq: int, limit: int) -> list[StoredRow]:
        assert self._reader_conn is not None
        rows = await self._reader_conn.execute_fetchall(
            "SELECT seq, source, received, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return rows  # type: ignore[return-value]

    async def load_cursors(self) -> dict[str, int]:
        assert self._reader_conn is not None
        rows = await self._reader_conn.execute_fetchall("SELECT destination, seq FROM cursors")
        return {name: seq for name, seq in rows}

    async def _max_seq(self) -> int:
        assert self._reader_conn is not None
        # sqlite_sequence remembers the highest seq ever handed out, even once retention has
        # emptied the table.
        rows = await self._reader_conn.execute_fetchall("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        return int(rows[0][0]) if rows else 0

    async def newest_seq(self) -> int:
        self.last_seq = await self._max_seq()
        return self.last_seq

    async def oldest_received_after(self, seq: int) -> int | None:
        """Receive time (ms) of the first event after ``seq``: how far behind a destination is."""
        assert self._reader_conn is not None
        rows = await self._reader_conn.execute_fetchall(
            "SELECT received FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (seq,)
        )
        return rows[0][0] if rows else None

    async def set_cursor(self, destination: str, seq: int) -> None:
        assert self.writer is not None
        await self.writer.set_cursor(destination, seq)

    async def dead_letter(self, destination: str, rows: list[tuple[int, str, int, bytes]], reason: str) -> None:
        """rows: (seq, source, received_ms, body)."""
        assert self.writer is not None
        now = int(time.time() * 1000)
        await self.writer.dead_letter([(destination, s, src, r, now, reason, b) for s, src, r, b in rows])

    async def count_dead_letters(self, destination: str) -> int:
        assert self._reader_conn is not None
        rows = await self._reader_conn.execute_fetchall(
            "SELECT count(*) FROM dead_letters WHERE destination = ?", (destination,)
        )
        return rows[0][0]
