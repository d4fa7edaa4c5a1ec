"""Group commit: the one writer of the log.

Request handlers, dispatchers and maintenance hand their writes to this object and await a future.
The writer takes everything pending, has it written in ONE transaction, then resolves every
future: one fsync is shared by all concurrent requests, and an HTTP 200 goes out only after the
COMMIT that holds its events.

The transaction itself runs in the log writer process (collector/log/writer_process.py, which says
why a process): this side only gathers the group, sends it, and awaits the outcome, so the event
loop goes on serving requests while the rows are written and the disk syncs.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import sys
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec

from collector.log.errors import StorageUnavailable
from collector.log.writer_process import Group, Hello, Outcome, frame

log = logging.getLogger(__name__)

EventRow = tuple[str, str, int, bytes]

# The writer empties the WAL once it passes this size (see LogWriter._restart_wal_if_large). The
# restart holds up every commit while it copies what is left and syncs: measured under 1,700
# single events/s (each small commit rewrites a few pages, so the WAL grows ~4 MB/s), restarting
# at 64 MB stalled the writer 100-160 ms every 15 s and made the p99 latency 61-142 ms; at 4 MB,
# p99 16 ms, and 100-event batches went no slower.
WAL_RESTART_BYTES = 4 * 1024 * 1024
# How long the writer process may take to open the file (a dedup file rebuilt from millions of
# events takes minutes; see systemd/collector.service's TimeoutStartSec), and to finish once
# told to stop.
_START_TIMEOUT = 15 * 60.0
_STOP_TIMEOUT = 60.0
# The pipe to the writer process is enlarged to this size where the system allows it.
_PIPE_BYTES = 4 * 1024 * 1024
# Groups sent to the writer process and not yet answered, at most.
_MAX_IN_FLIGHT = 4
# ... but a group of fewer events than _LARGE_GROUP waits while this many are unanswered, so that
# more single-event requests join it: each group costs the loop an encoding, a write to the pipe
# and an answer to decode. Measured in turns on /v1/track (no destination): 2 slots for small groups
# served 6% more requests than 4; batches of 100 events lost 13% with 2 slots for every group.
_MAX_IN_FLIGHT_SMALL = 2
_LARGE_GROUP = 100
# After the writer process could not be started, wait this long before trying again.
_RESPAWN_DELAY = 1.0


@dataclass(slots=True)
class _Group:
    """Everything one transaction will write, and who waits for it."""

    events: dict[str, list[EventRow]] = field(default_factory=lambda: defaultdict(list))
    cursors: dict[str, int] = field(default_factory=dict)
    dead_letters: list[tuple] = field(default_factory=list)
    statements: list[tuple[str, tuple]] = field(default_factory=list)
    statement_waiters: list[asyncio.Future] = field(default_factory=list)
    scripts: list[tuple[str, asyncio.Future]] = field(default_factory=list)
    waiters: list[asyncio.Future] = field(default_factory=list)
    event_count: int = 0

    def __len__(self) -> int:
        return len(self.waiters) + len(self.statements) + len(self.scripts)

    def wire(self) -> Group:
        return Group(
            events=self.events,  # type: ignore[arg-type]
            cursors=self.cursors,
            dead_letters=self.dead_letters,
            statements=self.statements,  # type: ignore[arg-type]
            scripts=[script for script, _ in self.scripts],
        )


@dataclass(slots=True)
class CommitStats:
    """What one commit wrote, for metrics."""

    committed: dict[str, int]  # source -> rows inserted
    duplicates: dict[str, int]  # source -> rows dropped as duplicates
    seconds: float
    dedup_ids: int = -1  # messageIds in the dedup window after this commit (-1: not known)
    dedup_window_ms: int = -1  # the dedup window in force (shorter than configured once dedup_max_ids is reached)


class WriterProcessError(Exception):
    """The log writer process could not be started, or stopped answering."""


def writer_command(directory: str, sync: str, dedup_window_ms: int, dedup_max_ids: int,
                   wal_restart_bytes: int) -> list[str]:
    return [sys.executable, "-m", "collector.log.writer_process", directory, sync, str(dedup_window_ms),
            str(dedup_max_ids), str(wal_restart_bytes)]


class Writer:
    def __init__(
        self,
        directory: str,
        sync: str,
        dedup_window_ms: int,
        on_commit: Callable[[CommitStats], None],
        on_failure: Callable[[Exception], None],
        dedup_max_ids: int = 0,
    ) -> None:
        self._directory = directory
        self._sync = sync
        self._dedup_window_ms = int(dedup_window_ms)
        self._dedup_max_ids = int(dedup_max_ids)
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._process: asyncio.subprocess.Process | None = None
        self._groups_pipe: GroupsPipe | None = None
        self._encoder = msgspec.msgpack.Encoder()
        self._outcome_decoder = msgspec.msgpack.Decoder(Outcome)
        self._group = _Group()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._receiver: asyncio.Task | None = None
        self._in_flight: deque[tuple[_Group, float]] = deque()  # sent, not yet answered, in order
        self._answered = asyncio.Event()
        self._closing = False

    async def open(self) -> None:
        """Start the writer process (it opens the file and creates the schema), then take writes.
        Raises RuntimeError when the file cannot be opened, e.g. one written by a newer collector."""
        try:
            await self._spawn()
        except WriterProcessError as error:
            raise RuntimeError(str(error)) from None
        self._task = asyncio.create_task(self._run(), name="log-writer")

    async def stop(self) -> None:
        """Commit what is pending, then stop the writer process."""
        self._closing = True
        self._wakeup.set()
        if self._task:
            await self._task
        await self._stop_process()

    # -- what callers hand in ------------------------------------------------------------------

    def append(self, source: str, rows: list[EventRow]) -> asyncio.Future:
        """Queue events for the next commit; the future resolves once they are durable."""
        group = self._enqueue()
        group.events[source].extend(rows)
        group.event_count += len(rows)
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
        group.statements.append((sql, params))
        group.statement_waiters.append(future)
        return future

    def execute_script(self, script: str) -> asyncio.Future:
        """Run a script in a transaction of its own, after the next commit. For pragmas such as
        incremental_vacuum that do their work step by step: only executescript steps them to the end."""
        group = self._enqueue()
        future = asyncio.get_running_loop().create_future()
        group.scripts.append((script, future))
        return future

    def _enqueue(self) -> _Group:
        if self._task is None or self._task.done():
            raise StorageUnavailable("the log is not open")
        self._wakeup.set()
        return self._group

    def _waiter(self, group: _Group) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        group.waiters.append(future)
        return future

    # -- the writer task -------------------------------------------------------------------------

    async def _run(self) -> None:
        """Send each group as soon as there is one, with at most _MAX_IN_FLIGHT unanswered: while
        the writer process syncs one commit, the next groups queue in its pipe, and it writes
        those together. Events that arrive while every slot is taken join the pending group."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if len(self._group):
                await self._wait_until(lambda: len(self._in_flight) < self._slots(self._group))
                group, self._group = self._group, _Group()
                await self._send(group)
            if self._closing and not len(self._group):
                await self._wait_until(lambda: not self._in_flight)
                return

    @staticmethod
    def _slots(group: _Group) -> int:
        return _MAX_IN_FLIGHT if group.event_count >= _LARGE_GROUP else _MAX_IN_FLIGHT_SMALL

    async def _send(self, group: _Group) -> None:
        """A process that died (or was killed) fails the groups it held (their clients retry; if
        one had committed, the retry is dropped as a duplicate) and is started again for the next."""
        process = self._process
        if process is None or process.returncode is not None:
            await self._wait_until(lambda: not self._in_flight)  # failed by the dead one's receiver
            try:
                await self._respawn()
            except WriterProcessError as error:
                log.error("%s", error)
                _fail_all(group, StorageUnavailable(str(error)))
                return
            process = self._process
        assert process is not None and self._groups_pipe is not None
        self._in_flight.append((group, time.perf_counter()))
        try:
            await self._groups_pipe.write(frame(self._encoder.encode(group.wire())))
        except ConnectionError:
            pass  # the process is gone: its receiver fails what it held, this group included

    async def _receive(self, process: asyncio.subprocess.Process) -> None:
        """The outcomes, in the order the groups were sent."""
        assert process.stdout is not None
        try:
            while True:
                head = await process.stdout.readexactly(4)
                payload = await process.stdout.readexactly(int.from_bytes(head, "big"))
                group, started = self._in_flight.popleft()
                try:
                    self._settle(group, self._outcome_decoder.decode(payload), time.perf_counter() - started)
                except Exception:  # noqa: BLE001 - a bug here must not leave every later group hanging
                    log.exception("settling a commit failed")
                    _fail_all(group, StorageUnavailable("internal error after the commit"))
                self._answered.set()
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            if self._in_flight or process is self._process and not self._closing:
                code = await _exit_code(process)
                message = f"the log writer process stopped (exit code {code}): {error}"
                log.error("%s", message)
                while self._in_flight:
                    group, _ = self._in_flight.popleft()
                    _fail_all(group, StorageUnavailable(message))
            if self._process is process:
                self._process = None
                if self._groups_pipe is not None:
                    self._groups_pipe.close()
                    self._groups_pipe = None
            self._answered.set()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._answered.clear()
            await self._answered.wait()

    def _settle(self, group: _Group, outcome: Outcome, seconds: float) -> None:
        for note in outcome.notes:
            log.warning("log writer: %s", note)
        if outcome.error is not None:
            error: Exception = OSError(outcome.error) if outcome.error_kind == "os" else sqlite3.OperationalError(outcome.error)
            log.error("commit failed: %s", error, extra={"events": sum(map(len, group.events.values()))})
            self._on_failure(error)
            failure = StorageUnavailable(_describe(error))
            _fail(group.waiters, failure)
            _fail(group.statement_waiters, failure)
        else:
            _resolve(group.waiters, None)
            for future, rowcount in zip(group.statement_waiters, outcome.rowcounts):
                _resolve([future], rowcount)
            self._on_commit(CommitStats(outcome.committed, outcome.duplicates, seconds, outcome.dedup_ids,
                                        outcome.dedup_window_ms))
        for (_, future), script_error in zip(group.scripts, outcome.script_errors):
            if script_error is None:
                _resolve([future], None)
            else:
                _fail([future], StorageUnavailable(_describe(sqlite3.OperationalError(script_error))))

    # -- the writer process ------------------------------------------------------------------------

    async def _spawn(self) -> None:
        # Read at spawn time, not import time, so that tests can lower it.
        argv = writer_command(self._directory, self._sync, self._dedup_window_ms, self._dedup_max_ids,
                              WAL_RESTART_BYTES)
        # Groups go through a pipe of our own, as large as the system allows (see GroupsPipe);
        # outcomes come back on stdout. stderr is inherited: a crash's traceback lands in the
        # collector's own log (the journal).
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=read_fd, stdout=asyncio.subprocess.PIPE, limit=2**20
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        groups_pipe = await GroupsPipe.open(write_fd)
        assert process.stdout is not None
        try:
            head = await asyncio.wait_for(process.stdout.readexactly(4), _START_TIMEOUT)
            hello = msgspec.msgpack.decode(await process.stdout.readexactly(int.from_bytes(head, "big")), type=Hello)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError) as error:
            groups_pipe.close()
            process.kill()
            code = await _exit_code(process)
            raise WriterProcessError(f"the log writer process did not start (exit code {code}): {error!r}") from None
        if hello.error is not None:
            groups_pipe.close()
            await _exit_code(process)
            raise WriterProcessError(hello.error)
        self._process, self._groups_pipe = process, groups_pipe
        self._receiver = asyncio.create_task(self._receive(process), name="log-writer-outcomes")

    async def _respawn(self) -> None:
        log.warning("starting the log writer process again")
        if self._groups_pipe is not None:
            self._groups_pipe.close()
            self._groups_pipe = None
        try:
            await self._spawn()
        except WriterProcessError as error:
            await asyncio.sleep(_RESPAWN_DELAY)  # don't spin while, say, the disk is unreadable
            raise WriterProcessError(f"the log writer process could not be started again: {error}") from None

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if self._groups_pipe is not None:
            self._groups_pipe.close()  # the process finishes its groups, if any, and exits at end of input
            self._groups_pipe = None
        try:
            await asyncio.wait_for(process.wait(), _STOP_TIMEOUT)
        except asyncio.TimeoutError:
            log.error("the log writer process did not stop within %.0fs; killing it", _STOP_TIMEOUT)
            process.kill()
            await process.wait()
        if self._receiver is not None:
            await self._receiver


class GroupsPipe(asyncio.Protocol):
    """The pipe that carries groups to the writer process, enlarged where the system allows.

    A pipe or socket holds 64-200 KB by default: a group of a few thousand events then crosses it
    in many pieces, each waiting for the busy event loop's next turn, while the writer process
    idles (measured under 100-event batches: groups waited 130 ms to be sent, and the writer
    process was idle 2/3 of the time). Linux lets a pipe grow to /proc/sys/fs/pipe-max-size (1 MB
    by default) without privileges, so such a group usually goes in one write."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._writable: asyncio.Future | None = None
        self._lost: BaseException | None = None

    @classmethod
    async def open(cls, write_fd: int) -> GroupsPipe:
        _widen(write_fd)
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(write_fd, "wb", buffering=0)
        transport, protocol = await loop.connect_write_pipe(cls, pipe)
        protocol._transport = transport
        return protocol

    async def write(self, data: bytes) -> None:
        if self._lost is not None or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("the pipe to the log writer process is closed")
        self._transport.write(data)
        if self._writable is not None:
            await self._writable

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol
    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = exc or ConnectionResetError("closed")
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_exception(ConnectionResetError("the log writer process closed its end"))


def _widen(fd: int) -> None:
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            size = min(int(f.read()), _PIPE_BYTES)
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (OSError, ValueError) as error:
        log.info("could not enlarge the pipe to the log writer process: %s", error)


async def _exit_code(process: asyncio.subprocess.Process) -> int | None:
    try:
        return await asyncio.wait_for(process.wait(), 5.0)
    except asyncio.TimeoutError:
        return None


def _resolve(futures: list[asyncio.Future], value: Any) -> None:
    for future in futures:
        if not future.done():  # a client that hung up cancels its future; the events stay committed
            future.set_result(value)


def _fail(futures: list[asyncio.Future], error: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


def _fail_all(group: _Group, error: Exception) -> None:
    _fail(group.waiters, error)
    _fail(group.statement_waiters, error)
    _fail([future for _, future in group.scripts], error)


def _describe(error: Exception) -> str:
    text = str(error)
    if "full" in text.lower():
        return "storage is full"
    return f"storage error: {text}"
