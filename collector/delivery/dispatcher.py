"""One dispatcher per destination: reads the log past its cursor, batches, sends, retries, acks.

Events are spread over ``concurrency`` lanes by user, so a user's events are always sent in order,
one batch at a time, while other users' events travel in parallel. The cursor advances only over
events that are delivered or dead-lettered, in log order, so a crash at any moment re-sends (never
skips) what was in flight: at-least-once, with each event's messageId kept for the receiver to
dedup.

A destination may answer for each event of a batch (``Outcome.per_event``): delivered events
finish, rejected ones are dead-lettered with their own reason, and only the retryable ones are
sent again. An answer with a Retry-After pauses every lane of the destination until then.
Destination filters (``filters:``) run here, as events are routed, for every destination type.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import msgspec

from collector.delivery.backoff import MAX_RETRY_AFTER, next_delay
from collector.delivery.routing import should_deliver
from collector.destinations.actions.filters import compiled_filters
from collector.destinations.base import Destination, Envelope, Outcome, RoutingFields, outcomes, retry
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
        self._m_filtered = metrics.filtered_events.labels(self.name)
        # None without filters, so that routing costs nothing more.
        self._event_filter = compiled_filters(self.config)
        # time.monotonic() until which no lane sends: the vendor asked to wait (Retry-After).
        self.paused_until = 0.0
        destination.bind_metrics(metrics)

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
        event_filter = self._event_filter
        now = time.monotonic()
        skipped = filtered = 0
        for seq, source, received, body in rows:
            try:
                routing = _routing_decoder.decode(body)
            except msgspec.MsgspecError:  # fields of unexpected types: route it as Segment would
                routing = RoutingFields()
            if not should_deliver(routing, source, config, integration_name):
                skipped += 1
                continue
            envelope = Envelope(seq, source, received, body, routing)
            if event_filter is not None:
                event = envelope.event
                kept = event_filter(event)
                if kept is None:
                    filtered += 1
                    continue
                if kept is not event:  # properties removed: the destination gets the new event
                    envelope = Envelope(seq, source, received, msgspec.json.encode(kept), routing)
                else:  # decoded again when sent, rather than held decoded while it waits
                    envelope._event = None
            chunk.pending += 1
            lanes[hash(envelope.user_key) % lane_count].put(_Item(envelope, chunk, now))
        if skipped:
            self._m_skipped.inc(skipped)
        if filtered:
            self._m_filtered.inc(filtered)
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
        """Send one batch until every event in it is delivered, rejected or too old; return early
        only on stop. Events the destination answers for one by one are settled one by one; a
        batch rejected as a whole is split until only the rejected events are dead-lettered."""
        metrics = self.metrics
        policy = self.config.retry
        attempt = 0
        while True:
            if await self._paused():
                return
            attempt += 1
            envelopes = [item.envelope for item in items]
            started = time.perf_counter()
            outcome = await self._send(envelopes)
            metrics.delivery_seconds.labels(self.name).observe(time.perf_counter() - started)
            metrics.deliveries.labels(self.name, outcome.kind).inc()
            if outcome.kind == "mixed":
                items, outcome = await self._settle(items, outcome)
                if not items:
                    return
            elif outcome.kind in ("ok", "skip"):
                if outcome.ok:
                    metrics.delivered_events.labels(self.name).inc(len(items))
                self.finished(items)
                return
            elif outcome.kind == "reject":
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
            if outcome.retry_after is not None:
                self.pause(outcome.retry_after)
            age = time.time() - min(item.envelope.received_ms for item in items) / 1000
            if age > policy.give_up_after:
                await self._dead_letter(items, f"gave up after {attempt} attempts: {outcome.reason}")
                return
            delay = next_delay(policy, attempt, outcome.retry_after)
            metrics.retries.labels(self.name).inc()
            log.warning(
                "%s: %d events will be retried in %.1fs: %s", self.name, len(items), delay, outcome.reason,
                extra={"destination": self.name, "attempt": attempt},
            )
            if await self._stopped_within(delay):
                return

    async def _send(self, envelopes: list[Envelope]) -> Outcome:
        destination = self.destination
        timeout = destination.send_timeout
        try:
            await self._start_destination()
            if timeout is None:
                return await destination.send(envelopes)
            return await asyncio.wait_for(destination.send(envelopes), timeout)
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError as error:
            _drop_tracebacks(error)
            return retry(f"no answer within {timeout:g}s" if timeout is not None else f"timed out: {error}")
        except Exception as error:  # the vendor's client failed: network, TLS, DNS ...
            _drop_tracebacks(error)
            return retry(f"{type(error).__name__}: {error}")

    async def _settle(self, items: list[_Item], outcome: Outcome) -> tuple[list[_Item], Outcome]:
        """Finish the delivered events of a batch answered event by event, dead-letter the
        rejected ones (grouped by reason); return the events to retry and why."""
        answers = outcome.per_event
        if len(answers) != len(items):
            log.error("%s: the destination answered for %d events of a batch of %d; retrying them all",
                      self.name, len(answers), len(items), extra={"destination": self.name})
            return items, retry(f"the destination answered for {len(answers)} of {len(items)} events")
        done: list[_Item] = []
        delivered = 0
        rejected: dict[str, list[_Item]] = {}
        again: list[_Item] = []
        again_why: list[Outcome] = []
        for item, answer in zip(items, answers):
            kind = answer.kind
            if kind == "ok" or kind == "skip":
                done.append(item)
                delivered += kind == "ok"
            elif kind == "reject":
                rejected.setdefault(answer.reason, []).append(item)
            else:  # retry; a nested "mixed" is a destination's bug, and is retried rather than lost
                again.append(item)
                again_why.append(answer if kind == "retry" else retry("the destination answered 'mixed' for one event"))
        if delivered:
            self.metrics.delivered_events.labels(self.name).inc(delivered)
        if done:
            self.finished(done)
        for reason, group in rejected.items():
            await self._dead_letter(group, reason)
        return again, outcomes(again_why)

    def pause(self, seconds: float) -> None:
        """No lane sends for ``seconds`` (at most MAX_RETRY_AFTER): the vendor asked to wait."""
        until = time.monotonic() + min(seconds, MAX_RETRY_AFTER)
        if until > self.paused_until:
            self.paused_until = until
            log.warning("%s: every lane pauses for %.1fs (Retry-After)", self.name, min(seconds, MAX_RETRY_AFTER),
                        extra={"destination": self.name})

    async def _paused(self) -> bool:
        """Wait while the destination is paused; True if the dispatcher stopped meanwhile."""
        while (remaining := self.paused_until - time.monotonic()) > 0:
            if await self._stopped_within(remaining):
                return True
        return False

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
