"""The kafka destination end to end: Segment's Python library -> the collector process -> a
Kafka-protocol broker (Tansu: no Apache Kafka broker runs on this machine) -> a consumer.

Tansu refuses aiokafka's idempotent producer, so these run with ``idempotent: false``: a produce
request whose answer is lost with the broker may be written twice, and the restart test counts
such copies rather than forbidding them."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.destinations.stream_checks import order_report
from tests.destinations.stream_e2e import (
    DESTINATION,
    Poster,
    check_received,
    collector_config,
    delivered,
    make_events,
    send_with_sdk,
    stored_bodies,
    wait_delivered,
)
from tests.support.brokers import MotoS3, TansuBroker, run_blocking


async def read_partitions(address: str, topics: list[str], at_least: int, wait: float = 20) -> list[Any]:
    """Every record of ``topics`` from the beginning, partition after partition, each in offset
    order, once at least ``at_least`` are there."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=address, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + wait
        while True:
            await consumer._client.force_metadata_update()  # noqa: SLF001 -- topics made after start
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
            if partitions or time.monotonic() > deadline:
                break
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            records += [r for batch in batches.values() for r in batch]
            if len(records) >= at_least and not batches:
                break
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return records
    finally:
        await consumer.stop()


def test_every_event_arrives_as_stored_keyed_by_user(collector_factory, tmp_path: Path) -> None:
    events = make_events(users=6, per_user=12)
    with TansuBroker(tmp_path / "tansu") as broker:
        collector = collector_factory(collector_config(
            {"type": "kafka", "brokers": [broker.address], "topic": "events.{type}", "idempotent": False}))
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))
        topics = ["events.track", "events.identify", "events.page"]
        records = run_blocking(lambda: read_partitions(broker.address, topics, len(events)))

    stored = stored_bodies(collector)
    assert sorted(r.value for r in records) == sorted(stored[e["messageId"]] for e in events)  # each once
    sent = {e["messageId"]: e for e in events}
    for record in records:
        event = sent[dict(record.headers)["messageId"].decode()]
        assert record.topic == f"events.{event['type']}"
        assert record.key == event["anonymousId"].encode()
        assert record.headers == (("messageId", event["messageId"].encode()), ("source", b"web"))
        assert record.value == stored[event["messageId"]]
    # Kafka keeps order within a partition; a user's events of one topic share one (the key's).
    for topic in topics:
        in_topic = [e for e in events if f"events.{e['type']}" == topic]
        missing, copies, disorder = order_report(in_topic, [r.value for r in records if r.topic == topic])
        assert (missing, copies, disorder) == ([], 0, [])
    partitions = defaultdict(set)
    for record in records:
        partitions[(record.topic, record.key)].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values()), partitions


def test_broker_restarted_mid_load_loses_nothing_and_keeps_each_users_order(collector_factory, tmp_path: Path) -> None:
    """Tansu keeps its topics in an S3 bucket (moto's server) here, so that they outlive its kill."""
    events = make_events(users=20, per_user=60)
    with MotoS3(tmp_path / "s3") as s3, TansuBroker(tmp_path / "tansu", s3=s3) as broker:
        # Down longer than a produce request may take: the producer gives up and the collector retries.
        collector = collector_factory(collector_config(
            {"type": "kafka", "brokers": [broker.address], "topic": "events.{source}", "idempotent": False,
             "request_timeout": 1}))
        poster = Poster(collector, events)
        wait_delivered(collector, len(events) // 4)
        broker.kill()
        delivered_before = delivered(collector)
        time.sleep(2.5)
        broker.start()
        poster.join()
        wait_delivered(collector, len(events), timeout=60)
        records = run_blocking(lambda: read_partitions(broker.address, ["events.web"], len(events)))

    copies = check_received(collector, events, [r.value for r in records])
    assert delivered_before < len(events), "the broker went down with nothing left to deliver"
    assert collector.metric("collector_delivery_retries_total", destination=DESTINATION) > 0, "no outage seen"
    print(f"kafka: {len(events)} events, {copies} extra copies after the broker's restart")
