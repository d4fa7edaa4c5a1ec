"""The kafka destination's contract fake: a real Kafka-protocol broker (Tansu, in memory, one per
test), read back with aiokafka's consumer."""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.stream_checks import simple_name, user_of
from tests.support.brokers import TansuBroker, run_blocking
from tests.support.process import free_port


async def read_topics(address: str, topics: set[str], count: int, wait: float = 10) -> list[Any]:
    """Every record of ``topics`` from the beginning, once ``count`` are there (and a moment more,
    to see any extra)."""
    import time

    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=address, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 -- topics made after it started
        partitions = [TopicPartition(t, p) for t in sorted(topics)
                      for p in sorted(consumer.partitions_for_topic(t) or [])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            records += [r for batch in batches.values() for r in batch]
            if len(records) >= count and not batches:
                break
        return records
    finally:
        await consumer.stop()


def _broker_down(fake: ContractFake) -> None:
    fake.closed = True


def _small_limit(fake: ContractFake) -> None:
    # Every contract event is larger than this; one topic, so that they share one reason.
    fake.overrides = {"max_message_bytes": 128, "topic": "events.all"}


class ContractFake(Fake):
    """Tansu refuses aiokafka's idempotent producer, so the example is sent with idempotent: false."""

    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.closed = False
        self.overrides: dict[str, Any] = {}

    async def __aenter__(self) -> ContractFake:
        self.broker = TansuBroker(self.tmp_path / "tansu").start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.broker.kill()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        address = f"127.0.0.1:{free_port()}" if self.closed else self.broker.address
        self.settings = {**copy.deepcopy(example), "brokers": [address], "idempotent": False, **self.overrides}
        return self.settings

    def assert_delivered(self, batch: list[Envelope]) -> None:
        topics = [simple_name(self.settings["topic"], e) for e in batch]
        records = run_blocking(lambda: read_topics(self.broker.address, set(topics), len(batch)))
        assert len(records) == len(batch), records
        by_value = {r.value: r for r in records}
        for topic, envelope in zip(topics, batch):
            record = by_value[envelope.raw]
            assert record.topic == topic
            assert record.key == user_of(envelope.raw).encode()
            event_id = envelope.event["messageId"]
            assert list(record.headers) == [("messageId", event_id.encode()), ("source", envelope.source.encode())]

    error_cases = [
        ErrorCase("broker down", _broker_down, "retry", None, "cannot connect to Kafka"),
        ErrorCase("message too large", _small_limit, "reject", None, "MessageSizeTooLargeError"),
    ]
