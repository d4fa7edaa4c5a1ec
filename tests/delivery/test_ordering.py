"""Per-visitor order through identification, under a slow destination with many lanes.

A browser visitor's events all carry its anonymousId: those before the `identify` that names it,
the `identify` itself (anonymousId and userId) and those after (both). They must reach the
destination in the order they were stored, whatever other visitors do meanwhile."""

import asyncio
import random

import msgspec

from collector.config.units import Duration
from collector.destinations.base import DELIVERED, BatchConfig, BuildContext, Destination, Envelope

from tests.delivery.test_dispatcher import ScriptedConfig, append, event_log, start, until  # noqa: F401

VISITORS = 60
BEFORE, AFTER = 3, 3


class Slow(Destination):
    """Takes a random few milliseconds per batch, so that lanes overtake one another."""

    Config = ScriptedConfig
    display_name = "Slow"

    def __init__(self, name: str, config: ScriptedConfig, seed: int) -> None:
        super().__init__(name, config, BuildContext(http=None, data_dir=""))
        self.random = random.Random(seed)
        self.delivered: list[dict] = []

    async def send(self, batch: list[Envelope]):
        await asyncio.sleep(self.random.uniform(0.001, 0.02))
        self.delivered += [e.event for e in batch]
        return DELIVERED


def visitor_events(visitor: int) -> list[dict]:
    anonymous_id, user_id = f"anon-{visitor}", f"user-{visitor}"
    events = [{"type": "page", "anonymousId": anonymous_id, "properties": {"step": step}} for step in range(BEFORE)]
    events.append({"type": "identify", "anonymousId": anonymous_id, "userId": user_id, "properties": {"step": BEFORE}})
    events += [
        {"type": "track", "event": "Clicked", "anonymousId": anonymous_id, "userId": user_id, "properties": {"step": step}}
        for step in range(BEFORE + 1, BEFORE + 1 + AFTER)
    ]
    return events


def interleaved(seed: int) -> list[bytes]:
    """Every visitor's events in its own order, the visitors shuffled among one another."""
    rng = random.Random(seed)
    queues = {v: visitor_events(v) for v in range(VISITORS)}
    bodies = []
    while queues:
        visitor = rng.choice(list(queues))
        bodies.append(msgspec.json.encode(queues[visitor].pop(0)))
        if not queues[visitor]:
            del queues[visitor]
    return bodies


async def test_a_visitors_events_keep_their_order_through_identify(event_log):
    total = VISITORS * (BEFORE + 1 + AFTER)
    for seed in range(3):
        destination = Slow(f"slow{seed}", ScriptedConfig(
            concurrency=8, start_from="earliest",
            batch=BatchConfig(max_events=3, max_wait=Duration(0.001)),
        ), seed)
        if seed == 0:
            await append(event_log, interleaved(seed))
        dispatcher = await start(event_log, destination)
        await until(lambda: len(destination.delivered) == total, timeout=30)
        await dispatcher.stop(1)
        for visitor in range(VISITORS):
            steps = [e["properties"]["step"] for e in destination.delivered if e["anonymousId"] == f"anon-{visitor}"]
            assert steps == list(range(BEFORE + 1 + AFTER)), (visitor, steps)


def test_the_lane_key_is_the_anonymous_id_when_there_is_one():
    from collector.destinations.base import RoutingFields

    def key(**fields) -> str:
        return Envelope(1, "s", 0, b"{}", RoutingFields(**fields)).user_key

    assert key(anonymousId="a", userId="u") == key(anonymousId="a") == "a"
    assert key(userId="u") == "u"
    assert key(anonymousId="", userId="u") == "u"
    assert key() == ""
