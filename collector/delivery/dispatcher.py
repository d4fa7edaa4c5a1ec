"""One dispatcher per destination: reads the log past its cursor, batches, sends, retries, acks.

Events are spread over ``concurrency`` lanes by user, so a user's events are always sent in order,
one batch at a time, while other users' events travel in parallel. The cursor advances only over
events that are delivered or dead-lettered, in log order, so a crash at any moment re-sends (never
skips) what was in flight: at-least-once, with each event's messageId kept for the receiver to
dedup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import msgspec

from collector.delivery.backoff import next_delay
from collector.delivery.routing import should_deliver
from collector.destinations.base import Destination, Envelope, RoutingFields, retry
from collector.log.errors import StorageUnavailable
from collector.log.event_log import EventLog
from collector.metrics import Metrics

log = logging.getLogger(__name__)

_routing_decoder = msgspec.json.Decoder(RoutingFields)
# How long a caught-up dispatcher waits after news of a commit before it reads (see _read_loop).
_TAIL_READ_DELAY = 0.01


@dataclass(slots=True)
class _Chunk:
    """A run of log positions read together; the cursor may pass it once nothing in it is pending."""

    last_seq: int
    pending: int = 0


@dataclass(slots=True)
class _Item:
    envelope: Envelope
    chunk: _Chunk
    queued_at: float


class Dispatcher:
    def __init__(self, destination: Destination, event_log: EventLog, metrics: Metrics) -> None:
        self.destination = destination
        self.name = destination.name
        self.config = destination.config
        self.log = event_log
        self.metrics = metrics
        self.cursor = 0  # every event up to here is delivered or dead-lettered
        self.durable_cursor = 0  # ... and this much of it is committed to the log
        self._read_pos = 0
        self._chunks: deque[_Chunk] = deque()
        self._inflight = 0
        batch = self.config.batch
        self._max_inflight = max(batch.max_events * self.config.concurrency * 4, 1000)
        self._room = asyncio.Event()
        self._cursor_moved = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lanes = [_Lane(self, i) for i in range(self.config.concurrency)]
        self._tasks: list[asyncio.Task] = []
        self._destination_started = False
        self._m_skipped = metrics.skipped_events.labels(self.name)

    async def start(self, saved_cursors: dict[str, int]) -> None:
        if self.name in saved_cursors:
            self.cursor = saved_cursors[self.name]
        elif self.config.start_from == "earliest":
            self.cursor = 0
        else:
            self.cursor = await self.log.newest_seq()
        self._read_pos = self.cursor
        await self.log.set_cursor(self.name, self.cursor)
        self.durable_cursor = self.cursor
        try:
            await self._start_destination()
        except Exception:
            pass  # logged; retried before the first send
        log.info(
            "destination %s starts after seq %d", self.name, self.cursor,
            extra={"destination": self.name, "type": self.config.__struct_config__.tag},
        )
        self._tasks = [asyncio.create_task(self._read_loop(), name=f"read-{self.name}")]
        self._tasks.append(asyncio.create_task(self._persist_cursor_loop(), name=f"cursor-{self.name}"))
        self._tasks += [asyncio.create_task(lane.run(), name=f"lane-{self.name}-{lane.index}") for lane in self._lanes]

    async def stop(self, timeout: float) -> None:
        """Finish the sends under way (up to ``timeout``), save the cursor, close the destination."""
        self._stopping.set()
        for lane in self._lanes:
            lane.wake.set()
        lanes = self._tasks[2:]
        done, pending = await asyncio.wait(lanes, timeout=timeout) if lanes else (set(), set())
        for task in pending:
            task.cancel()
        for task in self._tasks[:2]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.cursor > self.durable_cursor:
            try:
                await self.log.set_cursor(self.name, self.cursor)
                self.durable_cursor = self.cursor
            except StorageUnavailable as error:
                log.error("could not save the cursor of %s: %s", self.name, error)
        if self._destination_started:
            await self.destination.close()

    async def _start_destination(self) -> None:
        """Start the destination; a failure (a directory it cannot create, say) is logged and tried
        again before the next send, so one broken destination never stops the collector."""
        if self._destination_started:
            return
        try:
            await self.destination.start()
        except Exception as error:
            log.error("destination %s could not start: %s", self.name, error, extra={"destination": self.name})
            raise
        self._destination_started = True

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- reading ---------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self.stopping:
            room = self._max_inflight - self._inflight
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                rows = await self.log.read_after(self._read_pos, min(room, 5000))
            except Exception:
                log.exception("%s: reading the log failed; trying again", self.name)
                await self._stopped_within(1.0)
                continue
            if not rows:
                await self.log.wait_for_new_events(timeout=1.0)
                # Let a few more commits land before reading: under a stream of small commits
                # this reads the log once per few ms instead of once per commit.
                await asyncio.sleep(_TAIL_READ_DELAY)
                continue
            self._route(rows)

    def _route(self, rows: list) -> None:
        chunk = _Chunk(last_seq=rows[-1][0])
        lanes = self._lanes
        lane_count = len(lanes)
        config = self.config
        integration_name = self.destination.integration_name
        now = time.monotonic()
        skipped = 0
        for seq, source, received, body in rows:
            try:
                routing = _routing_decoder.decode(body)
            except msgspec.MsgspecError:  # fields of unexpected types: route it as Segment would
                routing = RoutingFields()
            if not should_deliver(routing, source, config, integration_name):
                skipped += 1
                continue
            envelope = Envelope(seq, source, received, body, routing)
            chunk.pending += 1
            lanes[hash(envelope.user_key) % lane_count].put(_Item(envelope, chunk, now))
        if skipped:
            self._m_skipped.inc(skipped)
        self._inflight += chunk.pending
        self._chunks.append(chunk)
        self._read_pos = chunk.last_seq
        self._advance()

    # -- acknowledging -----------------------------------------------------------------------------

    def finished(self, items: list[_Item]) -> None:
        """These events are delivered or dead-lettered: let the cursor pass them."""
        for item in items:
            item.chunk.pending -= 1
        self._inflight -= len(items)
        self._room.set()
        self._advance()

    def _advance(self) -> None:
        chunks = self._chunks
        moved = False
        while chunks and chunks[0].pending == 0:
            self.cursor = chunks.popleft().last_seq
            moved = True
        if moved:
            self._cursor_moved.set()

    async def _persist_cursor_loop(self) -> None:
        # One cursor write at a time; while one commits, further moves coalesce into the next.
        while True:
            await self._cursor_moved.wait()
            self._cursor_moved.clear()
            seq = self.cursor
            if seq <= self.durable_cursor:
                continue
            try:
                await self.log.set_cursor(self.name, seq)
                self.durable_cursor = seq
            except StorageUnavailable as error:
                log.warning("could not save the cursor of %s yet: %s", self.name, error)
                self._cursor_moved.set()
                await asyncio.sleep(1)

    # -- sending ----------------------------------------------------------------------------------

    async def deliver(self, items: list[_Item]) -> None:
        """Send one batch until it is delivered, rejected or too old; return early only on stop.
        A rejected batch is split until only the rejected events are dead-lettered."""
        envelopes = [item.envelope for item in items]
        destination = self.destination
        metrics = self.metrics
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                await self._start_destination()
                outcome = await asyncio.wait_for(destination.send(envelopes), self.config.timeout)
            except asyncio.CancelledError:
                raise
            except asyncio.TimeoutError as error:
                _drop_tracebacks(error)
                outcome = retry(f"no answer within {self.config.timeout:g}s")
            except Exception as error:  # the vendor's client failed: network, TLS, DNS ...
                _drop_tracebacks(error)
                outcome = retry(f"{type(error).__name__}: {error}")
            metrics.delivery_seconds.labels(self.name).observe(time.perf_counter() - started)
            metrics.deliveries.labels(self.name, outcome.kind).inc()
            if outcome.ok:
                metrics.delivered_events.labels(self.name).inc(len(items))
                self.finished(items)
                return
            if outcome.kind == "reject":
                if outcome.split and len(items) > 1:
                    # One bad event must not take the good ones with it: halve the batch and send
                    # each half, until the rejected events stand alone.
                    half = len(items) // 2
                    await self.deliver(items[:half])
                    if not self.stopping:
                        await self.deliver(items[half:])
                    return
                await self._dead_letter(items, outcome.reason)
                return
            age = time.time() - min(e.received_ms for e in envelopes) / 1000
            if age > policy.give_up_after:
                await self._dead_letter(items, f"gave up after {attempt} attempts: {outcome.reason}")
                return
            delay = next_delay(policy, attempt, outcome.retry_after)
            metrics.retries.labels(self.name).inc()
            log.warning(
                "%s: batch of %d will be retried in %.1fs: %s", self.name, len(items), delay, outcome.reason,
                extra={"destination": self.name, "attempt": attempt},
            )
            if await self._stopped_within(delay):
                return

    async def _dead_letter(self, items: list[_Item], reason: str) -> None:
        rows = [(i.envelope.seq, i.envelope.source, i.envelope.received_ms, i.envelope.raw) for i in items]
        while True:
            try:
                await self.log.dead_letter(self.name, rows, reason)
                break
            except StorageUnavailable as error:
                log.error("%s: cannot store dead letters yet: %s", self.name, error)
                if await self._stopped_within(1.0):
                    return
        self.metrics.dead_lettered.labels(self.name).inc(len(items))
        log.error("%s: %d events dead-lettered: %s", self.name, len(items), reason, extra={"destination": self.name})
        self.finished(items)

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False


def _drop_tracebacks(error: BaseException) -> None:
    """Forget where a failed send raised (and whatever it chained): only its message is kept.

    A traceback keeps the frames it passed through alive, the send's among them with the request
    body in its locals, and the exception and those frames form a cycle (asyncio's task holds the
    exception, a frame holds the task or the exception it was handling). Reference counting cannot
    free a cycle; only a full collection can, and with the collector's GC tuning those are rare.
    Measured: during a 10-minute outage one request body per retry (500 KB) piled up, 40 MB in
    the collector's process before a full collection freed them."""
    pending: list[BaseException | None] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += [current.__cause__, current.__context__]


class _Lane:
    """Sends one batch at a time, in log order, for the users hashed to it."""

    def __init__(self, dispatcher: Dispatcher, index: int) -> None:
        self.dispatcher = dispatcher
        self.index = index
        self.queue: deque[_Item] = deque()
        self.queued_bytes = 0
        self.wake = asyncio.Event()

    def put(self, item: _Item) -> None:
        self.queue.append(item)
        self.queued_bytes += len(item.envelope.raw)
        self.wake.set()

    async def run(self) -> None:
        dispatcher = self.dispatcher
        batch = dispatcher.config.batch
        loop = asyncio.get_running_loop()
        while not dispatcher.stopping:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            full = len(self.queue) >= batch.max_events or self.queued_bytes >= batch.max_bytes
            wait = self.queue[0].queued_at + batch.max_wait - time.monotonic()
            if full or wait <= 0:
                await self._deliver(self._take(batch.max_events, batch.max_bytes))
                continue
            self.wake.clear()
            waiter = loop.create_task(self.wake.wait())
            try:
                await asyncio.wait((waiter,), timeout=wait)
            finally:
                waiter.cancel()

    async def _deliver(self, items: list[_Item]) -> None:
        while True:
            try:
                return await self.dispatcher.deliver(items)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug, not a vendor's answer: keep the batch, never skip it
                log.exception("%s: delivering a batch failed unexpectedly; trying again", self.dispatcher.name)
                if await self.dispatcher._stopped_within(1.0):
                    return

    def _take(self, max_events: int, max_bytes: int) -> list[_Item]:
        items: list[_Item] = []
        size = 0
        queue = self.queue
        while queue and len(items) < max_events:
            item_size = len(queue[0].envelope.raw)
            if items and size + item_size > max_bytes:
                break
            items.append(queue.popleft())
            size += item_size
        self.queued_bytes -= size
        return items
