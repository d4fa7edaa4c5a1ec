"""Publish each event to an MQTT broker (aiomqtt), at QoS 1 by default.

The message's payload is the event as stored (Segment's JSON). With MQTT 5 (the default) it also
carries ``content_type: application/json`` and the user properties ``messageId`` (the event's)
and ``source`` (the source's name); MQTT 3.1.1 has no properties, only the payload. The topic is a
template (collector/destinations/stream_names.py), e.g. ``events/{source}/{type}``; a value keeps
ASCII letters, digits, ``.``, ``_`` and ``-`` (the rest, the level separator ``/`` included,
becomes ``_``), so each value is one level for a subscription's ``+``.

An event counts as delivered once the broker has acknowledged it: PUBACK at QoS 1, PUBCOMP at QoS
2. A lost connection, or no acknowledgement within ``ack_timeout``, is retried on a new
connection; the broker may then have the message twice (QoS 1 is at-least-once), so consumers
that must not see a copy skip a messageId they have seen. aiomqtt does not report an MQTT 5
PUBACK's reason code: a broker that acknowledges a message while refusing it (e.g. not
authorised to publish there) is not noticed, so grant the collector's user the right to publish
to every topic its template makes.
"""

from __future__ import annotations

import asyncio
import secrets
import urllib.parse
from typing import Any, ClassVar, Literal

from collector.config.units import Duration
from collector.destinations.base import (
    DELIVERED,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    retry,
)
from collector.destinations.stream_names import MQTT_TOPIC, compile_template
from collector.destinations.stream_support import (
    SharedConnection,
    TlsConfig,
    batch_outcome,
    describe,
    inner_timeout,
    redact_url,
    ssl_context,
)

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}


class MqttConfig(DestinationConfig, tag="mqtt", kw_only=True):
    # mqtt://[user:password@]host:1883, mqtts:// for TLS, ws:// or wss://host/path for websockets.
    url: str
    topic: str
    qos: Literal[1, 2] = 1
    protocol: Literal["3.1.1", "5"] = "5"
    # The client identifier; unset: "collector-<destination>-<random>", unique per connection.
    client_id: str | None = None
    # How long a publish may wait for the broker's acknowledgement (less than timeout; unset: two
    # thirds of it).
    ack_timeout: Duration | None = None
    keepalive: Duration = Duration(60)
    tls: TlsConfig | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "mqtt",
        "url": "mqtts://collector:${MQTT_PASSWORD}@mqtt.internal:8883",
        "topic": "events/{source}/{type}",
        "qos": 1,
        "protocol": "5",
    }

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"url must be mqtt://, mqtts://, ws:// or wss:// with a host, got {self.url!r}")
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number or out of range
        except ValueError as error:
            raise ValueError(f"url: {error}") from None
        inner_timeout("ack_timeout", self.ack_timeout, self.timeout)
        self._topic = compile_template("topic", self.topic, MQTT_TOPIC)

    def ack_wait(self) -> float:
        return inner_timeout("ack_timeout", self.ack_timeout, self.timeout)


class MqttDestination(Destination):
    Config = MqttConfig
    display_name = "MQTT"
    config: MqttConfig

    def __init__(self, name: str, config: MqttConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._topic = config._topic  # type: ignore[attr-defined]  # compiled with the config
        self._connection: SharedConnection[Any] = SharedConnection(self._open, self._disconnect)
        self._tls: Any = None
        self._publish_properties: Any = None  # paho's Properties, for MQTT 5

    async def start(self) -> None:
        """Loads aiomqtt and the TLS files; the first send connects, so that a broker down at
        start-up holds up nothing."""
        import aiomqtt  # noqa: F401 -- fails here, with the package's name, when it is not installed
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        if self.config.protocol == "5":
            self._publish_properties = lambda: Properties(PacketTypes.PUBLISH)
        if self.config.url.startswith(("mqtts://", "wss://")):
            self._tls = ssl_context(self.config.tls)

    async def _open(self) -> Any:
        import aiomqtt

        c = self.config
        parts = urllib.parse.urlsplit(c.url)
        websockets = parts.scheme in ("ws", "wss")
        client = aiomqtt.Client(
            parts.hostname or "", parts.port or _DEFAULT_PORTS[parts.scheme],
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            identifier=c.client_id or f"collector-{self.name}-{secrets.token_hex(4)}",
            protocol=aiomqtt.ProtocolVersion.V5 if c.protocol == "5" else aiomqtt.ProtocolVersion.V311,
            transport="websockets" if websockets else "tcp",
            websocket_path=(parts.path or "/") if websockets else None,
            timeout=c.ack_wait(), keepalive=int(c.keepalive), tls_context=self._tls,
            # paho keeps the rest queued, in order, until acknowledgements make room.
            max_inflight_messages=100,
        )
        await client.__aenter__()
        return client

    @staticmethod
    async def _disconnect(client: Any) -> None:
        await client.__aexit__(None, None, None)

    async def send(self, batch: list[Envelope]) -> Outcome:
        c = self.config
        try:
            client = await self._connection.get()
        except Exception as error:  # noqa: BLE001 -- any failure to connect is the broker's to fix
            return retry(f"cannot connect to MQTT broker at {redact_url(c.url)}: {describe(error)}")
        topics = []
        publishes = []
        # Each publish is a task, started in order: aiomqtt hands the message to paho as the task
        # starts, and paho sends them in that order; the acknowledgements are awaited together.
        for envelope in batch:
            topic, message_id = self._topic.address(envelope)
            topics.append(topic)
            publishes.append(asyncio.ensure_future(client.publish(
                topic, envelope.raw, qos=c.qos, properties=self._properties(message_id, envelope.source),
                timeout=c.ack_wait())))
        try:
            await asyncio.wait(publishes)
        except asyncio.CancelledError:
            for task in publishes:
                task.cancel()
            raise
        results: list[Outcome] = []
        for topic, task in zip(topics, publishes):
            error = task.exception()
            results.append(DELIVERED if error is None else retry(f"MQTT topic {topic}: {describe(error)}"))
        if any(r.kind == "retry" for r in results):
            await self._connection.lost(client)
        return batch_outcome(batch, results)

    def _properties(self, message_id: str, source: str) -> Any:
        if self._publish_properties is None:  # MQTT 3.1.1: no properties
            return None
        properties = self._publish_properties()
        properties.ContentType = "application/json"
        properties.UserProperty = [("messageId", message_id), ("source", source)]
        return properties

    async def close(self) -> None:
        await self._connection.close()
