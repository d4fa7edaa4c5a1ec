"""The mqtt destination's contract fake: the machine's Mosquitto, with a subscriber (MQTT 5, QoS 1)
to a topic prefix of the test's own, listening from before the send."""

from __future__ import annotations

import copy
import time
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.mqtt.support import Subscriber
from tests.destinations.stream_checks import simple_name, unique
from tests.support.brokers import SHARED_MQTT
from tests.support.process import free_port


def _broker_down(fake: ContractFake) -> None:
    fake.closed = True


class ContractFake(Fake):
    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.prefix = unique("contract")
        self.closed = False

    async def __aenter__(self) -> ContractFake:
        self.subscriber = Subscriber(SHARED_MQTT, f"{self.prefix}/#").start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.subscriber.stop()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        url = f"mqtt://127.0.0.1:{free_port()}" if self.closed else SHARED_MQTT  # no TLS here
        self.settings = {**copy.deepcopy(example), "url": url, "topic": f"{self.prefix}/{example['topic']}"}
        return self.settings

    def assert_delivered(self, batch: list[Envelope]) -> None:
        self.subscriber.wait_for(len(batch))
        time.sleep(0.2)  # room for a copy too many to show up
        messages = self.subscriber.messages
        assert [str(m.topic) for m in messages] == [simple_name(self.settings["topic"], e) for e in batch]
        assert [m.payload for m in messages] == [e.raw for e in batch]
        assert [m.qos for m in messages] == [self.settings.get("qos", 1)] * len(batch)
        if self.settings.get("protocol", "5") == "5":
            assert [m.properties.UserProperty for m in messages] == [
                [("messageId", e.event["messageId"]), ("source", e.source)] for e in batch]
            assert {m.properties.ContentType for m in messages} == {"application/json"}

    error_cases = [
        ErrorCase("broker down", _broker_down, "retry", None, "cannot connect to MQTT broker"),
    ]
