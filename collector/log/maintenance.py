"""Keeping the file bounded: retention, WAL checkpoints, giving pages back, capacity checks.

Every write still goes through the writer task (in chunks, so a large delete never holds the write
lock for long); checkpoints run on their own connection so they never sit inside a commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from collector.log.capacity import file_size
from collector.log.event_log import EventLog
from collector.log.schema import db_path

log = logging.getLogger(__name__)

DELETE_CHUNK = 10_000
# Checkpoint as soon as the WAL passes this size; smaller WALs are checkpointed every few seconds.
# The writer restarts the WAL long before (writer.WAL_RESTART_BYTES, 4 MB): this only matters when
# its restarts keep finding a reader or another checkpoint in the way and the WAL grows anyway.
WAL_CHECKPOINT_BYTES = 16 * 1024 * 1024


class Maintenance:
    def __init__(
        self,
        log_: EventLog,
        delivered_upto: Callable[[], int | None],
        *,
        dead_letter_retention: float,
        tick: float = 1.0,
        retention_every: float = 10.0,
        checkpoint_every: float = 5.0,
    ) -> None:
        """``delivered_upto()`` gives the highest seq every destination has durably passed, or
        None while it is not known yet."""
        self.log = log_
        self.delivered_upto = delivered_upto
        self.dead_letter_retention = dead_letter_retention
        self.tick = tick
        self.retention_every = retention_every
        self.checkpoint_every = checkpoint_every
        self._last_mark = -1
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-maintenance")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        last_retention = last_checkpoint = 0.0
        while True:
            try:
                # While storage refuses events, make room at every tick rather than every few seconds.
                refusing = not self.log.capacity.check()
                now = time.monotonic()
                wal = file_size(db_path(self.log.config.path) + "-wal")
                if refusing or wal > WAL_CHECKPOINT_BYTES or now - last_checkpoint >= self.checkpoint_every:
                    await self.checkpoint()
                    last_checkpoint = now
                if refusing or now - last_retention >= self.retention_every:
                    await self.apply_retention()
                    last_retention = now
                if refusing:
                    self.log.capacity.check()  # accept again as soon as the room is made
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed round must not end maintenance; the next one retries
                log.exception("storage maintenance failed")
            await asyncio.sleep(self.tick)

    async def checkpoint(self) -> None:
        conn = self.log.maintenance_conn
        assert conn is not None
        # PASSIVE copies what it can without waiting for readers or blocking the writer. Under
        # steady load it never catches up entirely, so the writer itself empties the WAL once it
        # is large (Writer._restart_wal_if_large); this keeps that last step short.
        # The file keeps its size, though, and counts against storage.max_bytes and the free
        # space: while storage refuses events, TRUNCATE gives that space back (it may wait for
        # readers and block the writer briefly, which only matters when events are flowing).
        mode = "PASSIVE" if self.log.capacity.accepting else "TRUNCATE"
        await conn.execute(f"PRAGMA wal_checkpoint({mode})")

    async def apply_retention(self) -> int:
        """Delete events every destination had longer ago than storage.retention. Returns how many."""
        cfg = self.log.config
        writer = self.log.writer
        assert writer is not None
        now = int(time.time() * 1000)
        await self.log.newest_seq()
        upto = self.delivered_upto()
        if upto is not None and upto > self._last_mark:
            await writer.execute("INSERT OR REPLACE INTO delivered_marks (at, seq) VALUES (?, ?)", (now, upto))
            self._last_mark = upto
        cutoff = now - int(cfg.retention * 1000)
        conn = self.log.maintenance_conn
        assert conn is not None
        rows = await conn.execute_fetchall(
            "SELECT at, seq FROM delivered_marks WHERE at <= ? ORDER BY at DESC LIMIT 1", (cutoff,)
        )
        deleted = 0
        if rows:
            mark_at, safe_seq = rows[0]
            # Events stay at least as long as the dedup window: the dedup file is rebuilt from them.
            received_before = now - int(cfg.dedup_window * 1000)
            while True:
                count = await writer.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ? AND received < ?"
                    " ORDER BY seq LIMIT ?)",
                    (safe_seq, received_before, DELETE_CHUNK),
                )
                deleted += count
                if count < DELETE_CHUNK:
                    break
            await writer.execute("DELETE FROM delivered_marks WHERE at < ?", (mark_at,))
        await writer.execute(
            "DELETE FROM dead_letters WHERE failed < ?", (now - int(self.dead_letter_retention * 1000),)
        )
        if deleted:
            # Give freed pages back to the filesystem (auto_vacuum = INCREMENTAL).
            await writer.execute_script("PRAGMA incremental_vacuum")
            log.info("retention removed %d events", deleted)
        return deleted
