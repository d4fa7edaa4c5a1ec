"""The mqtt destination's contract fake: the machine's Mosquitto, with a subscriber (MQTT 5, QoS 1)
to a topic prefix of the test's own, listening from before the send."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.stream_checks import simple_name, unique
from tests.support.brokers import SHARED_MQTT
from tests.support.process import free_port


class Subscriber:
    """Collects the messages of ``topic_filter`` in a thread of its own (with its own event loop),
    so that a synchronous check can wait for them while the test's loop is blocked."""

    def __init__(self, url: str, topic_filter: str, client_id: str | None = None, clean: bool = True) -> None:
        host, _, port = url.removeprefix("mqtt://").partition(":")
        self.host, self.port = host, int(port or 1883)
        self.topic_filter = topic_filter
        self.client_id = client_id
        self.clean = clean
        self.messages: list[Any] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self, timeout: float = 10) -> Subscriber:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"not subscribed to {self.topic_filter} within {timeout}s: {self._error}")
        return self

    async def _run(self) -> None:
        import aiomqtt

        while not self._stop.is_set():  # connects again after the broker restarts
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                          protocol=aiomqtt.ProtocolVersion.V5, clean_start=self.clean,
                                          properties=_session_expiry(self.clean)) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self._ready.set()
                    async for message in _until(client.messages, self._stop):
                        self.messages.append(message)
            except aiomqtt.MqttError as error:
                self._error = error
                await asyncio.sleep(0.1)

    def wait_for(self, count: int, timeout: float = 10) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.messages)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _session_expiry(clean: bool) -> Any:
    if clean:
        return None
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600  # the broker keeps the session (and what is queued for it)
    return properties


async def _until(messages: Any, stop: threading.Event) -> Any:
    iterator = messages.__aiter__()
    while not stop.is_set():
        try:
            yield await asyncio.wait_for(iterator.__anext__(), 0.1)
        except asyncio.TimeoutError:
            continue


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
