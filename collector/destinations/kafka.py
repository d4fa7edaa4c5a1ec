"""Publish each event to a Kafka topic (aiokafka).

The message's value is the event as stored (Segment's JSON), its key the user (the event's
anonymousId, else its userId: the key the delivery lanes use), so that all of a user's events land
in one partition, in order, through identification. Headers: ``messageId`` (the event's) and
``source`` (the source's name). The topic is a template (collector/destinations/stream_names.py),
e.g. ``events.{type}``; a value keeps ASCII letters, digits, ``.``, ``_`` and ``-`` (the rest
becomes ``_``), and a topic is cut to Kafka's 249 characters.

An event counts as delivered once every in-sync replica has it (``acks=all``). With ``idempotent:
true`` (the default) the producer numbers its messages, so the broker drops the copies that a
producer retry would otherwise write twice; brokers that do not support it (some Kafka-compatible
ones) need ``idempotent: false``. A message too large for the producer or the broker, or a topic
name the broker refuses, is rejected; anything else (no broker reachable, no leader, a topic not
there yet) is retried.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Literal

from collector.config.units import ByteSize, Duration
from collector.destinations.base import (
    DELIVERED,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    reject,
    retry,
)
from collector.destinations.stream_names import KAFKA_TOPIC, compile_template
from collector.destinations.stream_support import (
    SharedConnection,
    TlsConfig,
    batch_outcome,
    describe,
    inner_timeout,
    ssl_context,
)

log = logging.getLogger(__name__)


class KafkaConfig(DestinationConfig, tag="kafka", kw_only=True):
    # Bootstrap servers, "host:port"; the producer learns the rest of the cluster from them.
    brokers: list[str]
    topic: str
    idempotent: bool = True
    client_id: str = "collector"
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "none"
    # How long the producer waits to fill a batch before sending it.
    linger: Duration = Duration(0)
    # The producer's limit for one request; a larger event is rejected.
    max_message_bytes: ByteSize = ByteSize(1024 * 1024)
    # How long one produce request may take before the producer gives up on it (less than
    # timeout; unset: two thirds of it).
    request_timeout: Duration | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "kafka",
        "brokers": ["kafka-1.internal:9092", "kafka-2.internal:9092"],
        "topic": "events.{type}",
        "idempotent": True,
        "compression": "gzip",
    }

    def __post_init__(self) -> None:
        if not self.brokers:
            raise ValueError("brokers: name at least one broker, as host:port")
        for broker in self.brokers:
            host, _, port = broker.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"brokers: expected host:port, got {broker!r}")
        inner_timeout("request_timeout", self.request_timeout, self.timeout)
        if self.security_protocol.startswith("SASL") and not (self.username and self.password):
            raise ValueError(f"security_protocol {self.security_protocol} needs username and password")
        self._topic = compile_template("topic", self.topic, KAFKA_TOPIC)

    def request_wait(self) -> float:
        return inner_timeout("request_timeout", self.request_timeout, self.timeout)


# Errors about the message itself (or its topic's name): sending it again cannot help.
_REFUSED_FOR_GOOD = frozenset({
    "MessageSizeTooLargeError", "RecordTooLargeError", "RecordListTooLargeError", "InvalidTopicError",
    "CorruptRecordException", "InvalidTimestampError", "UnsupportedForMessageFormatError", "PolicyViolationError",
})
# The producer itself is broken (closed, fenced, its sequence numbers out of step): make another.
_PRODUCER_BROKEN = frozenset({
    "ProducerClosed", "ProducerFenced", "OutOfOrderSequenceNumber", "UnknownProducerId",
    "InvalidProducerEpoch", "IllegalStateError",
})


class KafkaDestination(Destination):
    Config = KafkaConfig
    display_name = "Kafka"
    config: KafkaConfig

    def __init__(self, name: str, config: KafkaConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._topic = config._topic  # type: ignore[attr-defined]  # compiled with the config
        self._connection: SharedConnection[Any] = SharedConnection(self._open, self._stop)
        self._options: dict[str, Any] = {}

    async def start(self) -> None:
        """Loads aiokafka and the TLS files; the first send connects, so that a broker down at
        start-up holds up nothing."""
        import aiokafka  # noqa: F401 -- fails here, with the package's name, when it is not installed

        c = self.config
        self._options = {
            "bootstrap_servers": list(c.brokers),
            "client_id": c.client_id,
            "acks": "all",
            "enable_idempotence": c.idempotent,
            "compression_type": None if c.compression == "none" else c.compression,
            "linger_ms": int(c.linger * 1000),
            "max_request_size": c.max_message_bytes,
            "request_timeout_ms": int(c.request_wait() * 1000),
            "security_protocol": c.security_protocol,
        }
        if c.security_protocol in ("SSL", "SASL_SSL"):
            self._options["ssl_context"] = ssl_context(c.tls)
        if c.security_protocol.startswith("SASL"):
            self._options.update(sasl_mechanism=c.sasl_mechanism, sasl_plain_username=c.username,
                                 sasl_plain_password=c.password)

    async def _open(self) -> Any:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    @staticmethod
    async def _stop(producer: Any) -> None:
        await producer.stop()

    async def send(self, batch: list[Envelope]) -> Outcome:
        try:
            producer = await self._connection.get()
        except Exception as error:  # noqa: BLE001 -- any failure to connect is the broker's to fix
            return retry(f"cannot connect to Kafka at {', '.join(self.config.brokers)}: {describe(error)}")
        results: list[Outcome] = [DELIVERED] * len(batch)
        pending: list[tuple[int, str, asyncio.Future]] = []
        for i, envelope in enumerate(batch):
            topic, message_id = self._topic.address(envelope)
            key = envelope.user_key.encode() or None
            headers = [("messageId", message_id.encode()), ("source", envelope.source.encode())]
            try:
                future = await producer.send(topic, envelope.raw, key=key, headers=headers)
            except Exception as error:  # noqa: BLE001 -- classified below
                results[i] = await self._outcome(producer, error, topic)
                if results[i].kind == "retry":
                    # The rest waits with it: a later event of the same user must not overtake it.
                    results[i + 1:] = [results[i]] * (len(batch) - i - 1)
                    break
                continue
            pending.append((i, topic, future))
        if pending:
            await asyncio.wait([future for _, _, future in pending])
        for i, topic, future in pending:
            error = future.exception()
            if error is not None:
                results[i] = await self._outcome(producer, error, topic)
        return batch_outcome(batch, results)

    async def _outcome(self, producer: Any, error: BaseException, topic: str) -> Outcome:
        name = type(error).__name__
        reason = f"Kafka topic {topic}: {describe(error)}"
        if name == "MessageSizeTooLargeError":  # aiokafka's own message names the size, event by event
            reason = (f"Kafka topic {topic}: {name}: the event is larger than max_message_bytes "
                      f"({self.config.max_message_bytes}) or the broker's limit")
        if name in _REFUSED_FOR_GOOD:
            return reject(reason)
        if name in _PRODUCER_BROKEN:
            await self._connection.lost(producer)
        return retry(reason)

    async def close(self) -> None:
        await self._connection.close()
