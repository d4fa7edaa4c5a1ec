"""An MQTT subscriber for the mqtt destination's tests."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any


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

        sink = self.messages

        class Recording(asyncio.Queue):
            """aiomqtt's message queue, replaced: each message is kept the moment paho hands it
            over (and acknowledges it), so none is left behind in a queue when the connection dies."""

            def put_nowait(self, item: Any) -> None:
                sink.append(item)

        while not self._stop.is_set():  # connects again after the broker restarts
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.client_id, queue_type=Recording,
                                          protocol=aiomqtt.ProtocolVersion.V5, clean_start=self.clean,
                                          properties=_kept_state(self.clean)) as client:
                    await client.subscribe(self.topic_filter, qos=1)
                    self._ready.set()
                    # The iteration ends (MqttError) only when the connection does: nothing is queued.
                    iteration = asyncio.ensure_future(anext(client.messages.__aiter__(), None))
                    while not self._stop.is_set() and not iteration.done():
                        await asyncio.sleep(0.05)
                    if not iteration.done():
                        iteration.cancel()
                    else:
                        iteration.result()
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


def _kept_state(clean: bool) -> Any:
    if clean:
        return None
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    # The broker keeps the subscription, and what is queued for it, for an hour after a disconnect.
    properties.SessionExpiryInterval = 3600
    return properties

