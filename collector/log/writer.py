"""Group commit: the one task that writes to the log.

Request handlers, dispatchers and maintenance hand their writes to this task and await a future.
The task takes everything pending, writes it in ONE transaction, commits, then resolves every
future: one fsync is shared by all concurrent requests, and an HTTP 200 goes out only after the
COMMIT that holds its events.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import aiosqlite

from collector.log.errors import StorageUnavailable

log = logging.getLogger(__name__)

# One row per event: (source, message_id, received_ms, body). The NOT EXISTS makes the insert
# idempotent per (source, messageId) within the dedup window; rows of one executemany see each
# other, so duplicates inside one group are caught too.
_INSERT_EVENT = """
INSERT INTO events (source, message_id, received, body)
SELECT ?1, ?2, ?3, ?4
WHERE NOT EXISTS (
    SELECT 1 FROM events WHERE source = ?1 AND message_id = ?2 AND received > ?3 - {window_ms}
)
"""
_UPSERT_CURSOR = """
INSERT INTO cursors (destination, seq, updated) VALUES (?, ?, ?)
ON CONFLICT (destination) DO UPDATE SET seq = excluded.seq, updated = excluded.updated
"""
_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (destination, seq, source, received, failed, reason, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

EventRow = tuple[str, str, int, bytes]


@dataclass(slots=True)
class _Group:
    """Everything one transaction will write."""

    events: dict[str, list[EventRow]] = field(default_factory=lambda: defaultdict(list))
    cursors: dict[str, int] = field(default_factory=dict)
    dead_letters: list[tuple] = field(default_factory=list)
    statements: list[tuple[str, tuple, asyncio.Future]] = field(default_factory=list)
    scripts: list[tuple[str, asyncio.Future]] = field(default_factory=list)
    waiters: list[asyncio.Future] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.waiters) + len(self.statements) + len(self.scripts)


@dataclass(slots=True)
class CommitStats:
    """What one commit wrote, for metrics."""

    committed: dict[str, int]  # source -> rows inserted
    duplicates: dict[str, int]  # source -> rows dropped as duplicates
    seconds: float


class Writer:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        dedup_window_ms: int,
        on_commit: Callable[[CommitStats], None],
        on_failure: Callable[[Exception], None],
    ) -> None:
        self._conn = conn
        self._insert_sql = _INSERT_EVENT.format(window_ms=int(dedup_window_ms))
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._group = _Group()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-writer")

    async def stop(self) -> None:
        """Commit what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task:
            await self._task

    # -- what callers hand in ------------------------------------------------------------------

    def append(self, source: str, rows: list[EventRow]) -> asyncio.Future:
        """Queue events for the next commit; the future resolves once they are durable."""
        group = self._enqueue()
        group.events[source].extend(rows)
        return self._waiter(group)

    def set_cursor(self, destination: str, seq: int) -> asyncio.Future:
        group = self._enqueue()
        group.cursors[destination] = max(seq, group.cursors.get(destination, seq))
        return self._waiter(group)

    def dead_letter(self, rows: list[tuple]) -> asyncio.Future:
        """rows: (destination, seq, source, received_ms, failed_ms, reason, body)."""
        group = self._enqueue()
        group.dead_letters.extend(rows)
        return self._waiter(group)

    def execute(self, sql: str, params: tuple = ()) -> asyncio.Future:
        """Run one statement in the next transaction; the future gets its rowcount."""
        group = self._enqueue()
        future = asyncio.get_running_loop().create_future()
        group.statements.append((sql, params, future))
        return future

    def execute_script(self, script: str) -> asyncio.Future:
        """Run a script in a transaction of its own, after the next commit. For pragmas such as
        incremental_vacuum that do their work step by step: only executescript steps them to the end."""
        group = self._enqueue()
        future = asyncio.get_running_loop().create_future()
        group.scripts.append((script, future))
        return future

    def _enqueue(self) -> _Group:
        if self._closing and self._task is not None and self._task.done():
            raise StorageUnavailable("the collector is shutting down")
        self._wakeup.set()
        return self._group

    def _waiter(self, group: _Group) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        group.waiters.append(future)
        return future

    # -- the writer task -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            group, self._group = self._group, _Group()
            if len(group):
                await self._commit(group)
                for script, future in group.scripts:
                    await self._run_script(script, future)
            if self._closing and not len(self._group):
                return

    async def _commit(self, group: _Group) -> None:
        started = time.perf_counter()
        conn = self._conn
        committed: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        results: list[tuple[asyncio.Future, Any]] = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for source, rows in group.events.items():
                    cursor = await conn.executemany(self._insert_sql, rows)
                    committed[source] = cursor.rowcount
                    duplicates[source] = len(rows) - cursor.rowcount
                if group.dead_letters:
                    await conn.executemany(_INSERT_DEAD_LETTER, group.dead_letters)
                if group.cursors:
                    now = int(time.time() * 1000)
                    await conn.executemany(
                        _UPSERT_CURSOR, [(d, s, now) for d, s in group.cursors.items()]
                    )
                for sql, params, future in group.statements:
                    cursor = await conn.execute(sql, params)
                    await cursor.fetchall()  # step to the end: some pragmas work row by row
                    results.append((future, cursor.rowcount))
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError, ValueError) as error:
            log.error("commit failed: %s", error, extra={"events": sum(map(len, group.events.values()))})
            self._on_failure(error)
            failure = StorageUnavailable(_describe(error))
            for future in group.waiters:
                if not future.done():
                    future.set_exception(failure)
            for _, _, future in group.statements:
                if not future.done():
                    future.set_exception(failure)
            return
        for future in group.waiters:
            if not future.done():
                future.set_result(None)
        for future, rowcount in results:
            if not future.done():
                future.set_result(rowcount)
        self._on_commit(CommitStats(committed, duplicates, time.perf_counter() - started))

    async def _run_script(self, script: str, future: asyncio.Future) -> None:
        try:
            await self._conn.executescript(f"BEGIN IMMEDIATE; {script}; COMMIT;")
        except (sqlite3.Error, OSError) as error:
            if self._conn.in_transaction:
                await self._conn.execute("ROLLBACK")
            if not future.done():
                future.set_exception(StorageUnavailable(_describe(error)))
            return
        if not future.done():
            future.set_result(None)


def _describe(error: Exception) -> str:
    text = str(error)
    if "full" in text.lower():
        return "storage is full"
    return f"storage error: {text}"
