"""The delivery engine against a scripted in-process destination (the HTTP destinations are
covered against real local servers in tests/destinations and tests/e2e)."""

import asyncio
import gc
import time
import weakref
from collections import deque

import aiohttp
import msgspec
import pytest

from collector.config.model import StorageConfig
from collector.config.units import Duration, decode_hook
from collector.delivery.dispatcher import Dispatcher
from collector.destinations.base import (
    DELIVERED,
    BatchConfig,
    BuildContext,
    Destination,
    DestinationConfig,
    Outcome,
    RetryConfig,
    reject,
    retry,
)
from collector.log.event_log import EventLog
from collector.metrics import Metrics


class ScriptedConfig(DestinationConfig, tag="scripted", kw_only=True):
    pass


class Scripted(Destination):
    Config = ScriptedConfig
    display_name = "Scripted"

    def __init__(self, name, config, answers=(), block: asyncio.Event | None = None):
        super().__init__(name, config, BuildContext(http=None, data_dir=""))
        self.answers: deque[Outcome] = deque(answers)
        self.batches: list[list[dict]] = []
        self.attempts = 0
        self.block = block

    async def send(self, batch):
        self.attempts += 1
        if self.block is not None:
            await self.block.wait()
        outcome = self.answers.popleft() if self.answers else DELIVERED
        if outcome.ok:
            self.batches.append([e.event for e in batch])
        return outcome

    @property
    def delivered(self) -> list[dict]:
        return [event for batch in self.batches for event in batch]


def config(**overrides) -> ScriptedConfig:
    overrides.setdefault("batch", BatchConfig(max_events=10, max_wait=Duration(0.01)))
    overrides.setdefault("retry", RetryConfig(initial_backoff=Duration(0.01), max_backoff=Duration(0.05)))
    return ScriptedConfig(**overrides)


def event(user: str, n: int, **extra) -> bytes:
    return msgspec.json.encode({"type": "track", "userId": user, "event": "E", "properties": {"n": n}, **extra})


@pytest.fixture
async def event_log(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    yield log
    await log.close()


async def append(log: EventLog, bodies: list[bytes], source: str = "web") -> None:
    now = int(time.time() * 1000)
    await log.append(source, [(source, f"{source}-{time.monotonic_ns()}-{i}", now, b) for i, b in enumerate(bodies)])


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def start(log, destination) -> Dispatcher:
    dispatcher = Dispatcher(destination, log, Metrics())
    await dispatcher.start(await log.load_cursors())
    return dispatcher


async def test_delivers_everything_in_order_per_user_and_saves_the_cursor(event_log):
    dest = Scripted("d", config(concurrency=3))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event(f"u{i % 5}", i) for i in range(100)])
    await until(lambda: len(dest.delivered) == 100)
    for user in range(5):
        numbers = [e["properties"]["n"] for e in dest.delivered if e["userId"] == f"u{user}"]
        assert numbers == sorted(numbers) and len(numbers) == 20
    await until(lambda: dispatcher.durable_cursor == 100)
    await dispatcher.stop(1)
    assert (await event_log.load_cursors())["d"] == 100


async def test_batches_respect_max_events_and_max_bytes(event_log):
    dest = Scripted("d", config(concurrency=1, batch=BatchConfig(max_events=7, max_bytes=1000, max_wait=Duration(0.05))))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i, pad="x" * 200) for i in range(30)])
    await until(lambda: len(dest.delivered) == 30)
    await dispatcher.stop(1)
    assert all(len(b) <= 7 for b in dest.batches)
    assert all(sum(len(msgspec.json.encode(e)) for e in b) <= 1000 for b in dest.batches)


async def test_retries_keep_order_and_lose_nothing(event_log):
    answers = [retry("HTTP 503"), retry("HTTP 429", after=0.05), retry("boom")]
    dest = Scripted("d", config(concurrency=2), answers)
    dispatcher = await start(event_log, dest)
    await append(event_log, [event(f"u{i % 3}", i) for i in range(60)])
    await until(lambda: len(dest.delivered) == 60)
    await dispatcher.stop(1)
    assert dest.attempts >= 3 + len(dest.batches)
    for user in range(3):
        numbers = [e["properties"]["n"] for e in dest.delivered if e["userId"] == f"u{user}"]
        assert numbers == sorted(numbers)
    assert dispatcher.metrics.retries.labels("d")._value.get() == 3


async def test_retry_after_is_honoured(event_log):
    dest = Scripted("d", config(concurrency=1), [retry("HTTP 429", after=0.5)])
    dispatcher = await start(event_log, dest)
    started = time.monotonic()
    await append(event_log, [event("u", 1)])
    await until(lambda: len(dest.delivered) == 1)
    await dispatcher.stop(1)
    assert time.monotonic() - started >= 0.5


async def test_a_permanent_error_dead_letters_only_the_bad_event_and_delivery_goes_on(event_log):
    class RejectsPoison(Scripted):
        async def send(self, batch):
            self.attempts += 1
            if any(e.event.get("poison") for e in batch):
                return reject("HTTP 400: invalid", split=True)
            self.batches.append([e.event for e in batch])
            return DELIVERED

    dest = RejectsPoison("d", config(concurrency=1, batch=BatchConfig(max_events=8, max_wait=Duration(0.2))))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i, poison=(i == 5)) for i in range(8)])
    await until(lambda: dispatcher.cursor == 8)
    await append(event_log, [event("u", i) for i in range(8, 11)])
    await until(lambda: len(dest.delivered) == 10)
    await dispatcher.stop(1)
    assert [e["properties"]["n"] for e in dest.delivered] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    rows = await event_log._reader_conn.execute_fetchall("SELECT seq, reason FROM dead_letters")
    assert rows == [(6, "HTTP 400: invalid")]


async def test_a_rejection_of_the_whole_batch_is_not_split(event_log):
    dest = Scripted("d", config(concurrency=1, batch=BatchConfig(max_events=8, max_wait=Duration(0.2))),
                    [reject("HTTP 404: no such endpoint")])
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i) for i in range(8)])
    await until(lambda: dispatcher.cursor == 8)
    await dispatcher.stop(1)
    assert dest.attempts == 1
    assert await event_log.count_dead_letters("d") == 8


async def test_gives_up_after_the_give_up_age(event_log):
    policy = RetryConfig(initial_backoff=Duration(0.01), max_backoff=Duration(0.02), give_up_after=Duration(0.3))
    dest = Scripted("d", config(retry=policy), [retry("HTTP 503")] * 1000)
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", 1)])
    await until(lambda: dispatcher.cursor == 1)
    await dispatcher.stop(1)
    rows = await event_log._reader_conn.execute_fetchall("SELECT reason FROM dead_letters")
    assert rows[0][0].startswith("gave up after") and "HTTP 503" in rows[0][0]
    assert dest.delivered == []


async def test_exceptions_and_timeouts_are_retried(event_log):
    class Flaky(Scripted):
        async def send(self, batch):
            self.attempts += 1
            if self.attempts == 1:
                raise ConnectionResetError("peer reset")
            if self.attempts == 2:
                await asyncio.sleep(10)  # longer than the timeout
            self.batches.append([e.event for e in batch])
            return DELIVERED

    dest = Flaky("d", config(timeout=Duration(0.1)))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", 1)])
    await until(lambda: len(dest.delivered) == 1)
    await dispatcher.stop(1)
    assert dest.attempts == 3


class RequestBody:
    """Stands for the request body a send builds (bytes cannot be watched with a weakref)."""


@pytest.mark.parametrize("failure", ["connection refused", "timeout"])
async def test_a_failed_send_leaves_nothing_for_the_garbage_collector(event_log, failure):
    # A traceback keeps the send's frames, and the request body in them, alive in a cycle that only
    # a full collection frees: during a long outage one body per retry piled up.
    class Unreachable(Scripted):
        bodies: weakref.WeakSet = weakref.WeakSet()

        async def send(self, batch):
            self.attempts += 1
            body = RequestBody()
            self.bodies.add(body)
            try:
                raise OSError("connect call failed")
            except OSError as error:  # chained, as aiohttp's connector does
                if failure == "timeout":  # aiohttp's own timeouts are asyncio.TimeoutError
                    raise asyncio.TimeoutError("no answer") from error
                raise ConnectionRefusedError("cannot connect") from error

    dest = Unreachable("d", config())
    gc.collect()
    gc.disable()
    try:
        dispatcher = await start(event_log, dest)
        await append(event_log, [event("u", 1)])
        await until(lambda: dest.attempts >= 20)
        await dispatcher.stop(1)
        assert len(dest.bodies) <= 1, f"{len(dest.bodies)} request bodies of failed sends are still alive"
    finally:
        gc.enable()


async def test_events_not_for_the_destination_are_skipped_and_passed(event_log):
    dest = Scripted("d", config(sources=["web"]))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", 1, integrations={"All": False})])
    await append(event_log, [event("u", 2, integrations={"All": False, "Scripted": True})])
    await append(event_log, [event("u", 3)], source="app")
    await append(event_log, [event("u", 4)])
    await until(lambda: dispatcher.cursor == 4)
    await dispatcher.stop(1)
    assert [e["properties"]["n"] for e in dest.delivered] == [2, 4]


async def test_start_from_now_or_earliest(event_log):
    await append(event_log, [event("u", i) for i in range(3)])
    now = Scripted("now", config())
    earliest = Scripted("earliest", config(start_from="earliest"))
    dispatchers = [await start(event_log, now), await start(event_log, earliest)]
    await append(event_log, [event("u", 3)])
    await until(lambda: len(earliest.delivered) == 4 and len(now.delivered) == 1)
    for d in dispatchers:
        await d.stop(1)
    assert now.delivered[0]["properties"]["n"] == 3


async def test_a_stuck_destination_holds_up_neither_another_nor_memory(event_log):
    stuck = Scripted("stuck", config(concurrency=1, batch=BatchConfig(max_events=10, max_wait=Duration(0.01))),
                     block=asyncio.Event())
    healthy = Scripted("healthy", config())
    stuck_dispatcher = await start(event_log, stuck)
    healthy_dispatcher = await start(event_log, healthy)
    await append(event_log, [event(f"u{i}", i) for i in range(5000)])
    await until(lambda: len(healthy.delivered) == 5000)
    assert stuck.delivered == []
    assert stuck_dispatcher._inflight <= stuck_dispatcher._max_inflight
    assert stuck_dispatcher._read_pos < 5000  # it stopped reading ahead of what it can send
    stuck.block.set()
    await until(lambda: len(stuck.delivered) == 5000)
    for d in (stuck_dispatcher, healthy_dispatcher):
        await d.stop(1)


async def test_stopping_mid_retry_keeps_undelivered_events_for_the_next_start(event_log):
    dest = Scripted("d", config(retry=RetryConfig(initial_backoff=Duration(5))), [retry("HTTP 503")])
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", 1)])
    await until(lambda: dest.attempts == 1)
    await dispatcher.stop(1)
    assert (await event_log.load_cursors())["d"] == 0

    again = Scripted("d", config())
    dispatcher = await start(event_log, again)
    await until(lambda: len(again.delivered) == 1)
    await dispatcher.stop(1)


async def test_a_destination_that_cannot_start_is_retried_and_the_rest_goes_on(event_log):
    class StartsLate(Scripted):
        starts = 0

        async def start(self):
            self.starts += 1
            if self.starts < 3:
                raise PermissionError("cannot create the directory")

    dest = StartsLate("d", config())
    dispatcher = await start(event_log, dest)  # does not raise
    await append(event_log, [event("u", 1)])
    await until(lambda: len(dest.delivered) == 1)
    await dispatcher.stop(1)
    assert dest.starts == 3


# --- Answers event by event, pauses, filters ---------------------------------------------------------


class Answers(Scripted):
    """Answers each batch with the next function of ``script`` (batch -> Outcome), then delivers."""

    def __init__(self, name, config, script):
        super().__init__(name, config)
        self.script = deque(script)
        self.sent: list[list[int]] = []

    async def send(self, batch):
        self.attempts += 1
        self.sent.append([e.event["properties"]["n"] for e in batch])
        outcome = self.script.popleft()(batch) if self.script else DELIVERED
        if outcome.ok:
            self.batches.append([e.event for e in batch])
        return outcome


def per_event(*answers: Outcome):
    return lambda batch: Outcome("mixed", per_event=answers)


async def test_answers_per_event_finish_dead_letter_and_retry_each_event(event_log):
    script = [per_event(DELIVERED, reject("bad 1"), retry("later"), reject("bad 3"), DELIVERED, reject("bad 1"))]
    dest = Answers("d", config(concurrency=1, batch=BatchConfig(max_events=6, max_wait=Duration(0.2))), script)
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i) for i in range(6)])
    await until(lambda: dispatcher.cursor == 6)
    await dispatcher.stop(1)
    assert dest.sent == [[0, 1, 2, 3, 4, 5], [2]]  # only the retryable event is sent again, alone
    rows = await event_log._reader_conn.execute_fetchall("SELECT seq, reason FROM dead_letters ORDER BY seq")
    assert rows == [(2, "bad 1"), (4, "bad 3"), (6, "bad 1")]  # each with its own reason, not split
    metrics = dispatcher.metrics
    assert metrics.delivered_events.labels("d")._value.get() == 3
    assert metrics.dead_lettered.labels("d")._value.get() == 3
    assert metrics.deliveries.labels("d", "mixed")._value.get() == 1


async def test_skipped_events_pass_the_cursor_without_counting_as_delivered(event_log):
    from collector.destinations.base import SKIPPED

    script = [per_event(SKIPPED, DELIVERED), lambda batch: SKIPPED]
    dest = Answers("d", config(concurrency=1, batch=BatchConfig(max_events=2, max_wait=Duration(0.2))), script)
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i) for i in range(4)])
    await until(lambda: dispatcher.cursor == 4)
    await dispatcher.stop(1)
    assert dispatcher.metrics.delivered_events.labels("d")._value.get() == 1
    assert await event_log.count_dead_letters("d") == 0


async def test_retried_events_wait_for_the_largest_retry_after(event_log):
    script = [per_event(retry("a", 0.2), DELIVERED, retry("b", 0.4))]
    dest = Answers("d", config(concurrency=1, batch=BatchConfig(max_events=3, max_wait=Duration(0.2))), script)
    dispatcher = await start(event_log, dest)
    pauses: list[float] = []
    pause = dispatcher.pause
    dispatcher.pause = lambda seconds: (pauses.append(seconds), pause(seconds))
    await append(event_log, [event("u", i) for i in range(3)])
    await until(lambda: dispatcher.cursor == 3)
    await dispatcher.stop(1)
    assert pauses == [0.4]
    assert dest.sent == [[0, 1, 2], [0, 2]]


async def test_a_wrong_number_of_answers_retries_the_whole_batch(event_log):
    script = [per_event(DELIVERED)]
    dest = Answers("d", config(concurrency=1, batch=BatchConfig(max_events=2, max_wait=Duration(0.2))), script)
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i) for i in range(2)])
    await until(lambda: dispatcher.cursor == 2)
    await dispatcher.stop(1)
    assert dest.sent == [[0, 1], [0, 1]]
    assert dispatcher.metrics.delivered_events.labels("d")._value.get() == 2


def users_in_two_lanes() -> tuple[str, str]:
    first = "a"
    second = next(f"b{i}" for i in range(100) if hash(f"b{i}") % 2 != hash(first) % 2)
    return first, second


async def test_a_retry_after_pauses_every_lane_of_the_destination(event_log):
    first, second = users_in_two_lanes()
    sends: list[tuple[str, float]] = []

    class Throttled(Scripted):
        async def send(self, batch):
            self.attempts += 1
            user = batch[0].event["userId"]
            sends.append((user, time.monotonic()))
            if self.attempts == 1:
                return retry("HTTP 429", after=0.3)
            self.batches.append([e.event for e in batch])
            return DELIVERED

    dest = Throttled("d", config(concurrency=2))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event(first, 0)])
    await until(lambda: dispatcher.paused_until > 0)
    paused_until = dispatcher.paused_until
    await append(event_log, [event(second, 1)])  # another lane, idle until now
    await until(lambda: len(dest.delivered) == 2)
    await dispatcher.stop(1)
    assert [user for user, _ in sends] in ([first, second, first], [first, first, second])
    assert all(at >= paused_until for _, at in sends[1:])  # nothing was sent before the pause ended


async def test_destination_filters_run_before_the_destination(event_log):
    filters = [{"if": "properties.n = 1", "drop": True},
               {"drop_properties": {"": ["secret"]}}]
    dest = Scripted("d", msgspec.convert({"type": "scripted", "filters": filters, "concurrency": 1,
                                          "batch": {"max_events": 10, "max_wait": 0.01}},
                                         ScriptedConfig, strict=False, dec_hook=decode_hook))
    dispatcher = await start(event_log, dest)
    await append(event_log, [event("u", i, secret="s") for i in range(3)])
    await until(lambda: dispatcher.cursor == 3)
    await dispatcher.stop(1)
    assert dest.delivered == [{"type": "track", "userId": "u", "event": "E", "properties": {"n": n}} for n in (0, 2)]
    assert dispatcher.metrics.filtered_events.labels("d")._value.get() == 1


async def test_filters_apply_to_a_webhook_too(event_log):
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from collector.destinations.webhook import WebhookConfig, WebhookDestination

    received: list = []

    async def hook(request):
        received.extend(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    try:
        settings = msgspec.convert({
            "type": "webhook", "url": f"http://127.0.0.1:{server.port}/hook", "concurrency": 1,
            "batch": {"max_events": 10, "max_wait": 0.01},
            "filters": [{"if": 'properties.n = 1', "drop": True},
                        {"allow_properties": {"": ["userId", "event", "properties"]}}],
        }, WebhookConfig, strict=False, dec_hook=decode_hook)
        async with aiohttp.ClientSession() as http:
            dispatcher = await start(event_log, WebhookDestination("hook", settings, BuildContext(http, "")))
            await append(event_log, [event("u", i, secret="s", email="e@x") for i in range(3)])
            await until(lambda: dispatcher.cursor == 3)
            await dispatcher.stop(1)
    finally:
        await server.close()
    assert received == [{"type": "track", "userId": "u", "event": "E", "properties": {"n": n}} for n in (0, 2)]
