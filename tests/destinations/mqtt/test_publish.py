"""The mqtt destination against the machine's Mosquitto, in what the contract's example leaves out."""

from __future__ import annotations

import time
from pathlib import Path

from collector.destinations.base import DELIVERED
from tests.destinations.fakes import build, envelopes, started
from tests.destinations.mqtt.support import Subscriber
from tests.destinations.stream_checks import unique
from tests.support.brokers import SHARED_MQTT


async def test_mqtt_3_1_1_at_qos_2_sends_the_payload_alone(tmp_path: Path) -> None:
    prefix = unique("publish")
    subscriber = Subscriber(SHARED_MQTT, f"{prefix}/#").start()
    try:
        settings = {"type": "mqtt", "url": SHARED_MQTT, "topic": f"{prefix}/{{type}}", "qos": 2, "protocol": "3.1.1"}
        batch = envelopes()
        async with started(build(settings, None, tmp_path)) as destination:
            assert await destination.send(batch) == DELIVERED
        subscriber.wait_for(len(batch))
        time.sleep(0.2)  # room for a copy too many to show up
    finally:
        subscriber.stop()
    messages = subscriber.messages
    assert [(str(m.topic), m.payload) for m in messages] == [(f"{prefix}/{e.routing.type}", e.raw) for e in batch]
    # Published at QoS 2; the subscription (QoS 1) caps what the subscriber gets.
    assert {m.qos for m in messages} == {1}
    assert all(not getattr(m.properties, "UserProperty", None) for m in messages)
