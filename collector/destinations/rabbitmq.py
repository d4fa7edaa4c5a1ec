"""Publish each event to a RabbitMQ exchange (aio-pika), with publisher confirms.

The message's body is the event as stored (Segment's JSON), ``content_type: application/json``,
persistent (``delivery_mode=2``, so a durable queue keeps it across a broker restart), with
``message_id`` = the event's messageId and a ``source`` header (the source's name). The routing
key is a template (collector/destinations/stream_names.py), e.g. ``{type}.{source}``; a value keeps
ASCII letters, digits, ``_`` and ``-`` (the rest, the word separator ``.`` included, becomes
``_``), so each value is one word for a topic exchange's bindings (``track.*``, ``#.web``); a
routing key is cut to AMQP's 255 characters.

An event counts as delivered once the broker has confirmed it (``basic.ack``: for a persistent
message routed to durable queues, once they have it on disk). Published ``mandatory``, a message
no queue is bound to receive comes back and is rejected (``mandatory: false`` lets the broker drop
it instead); so is a message to an exchange that does not exist (unless ``exchange_type`` makes
the collector declare it) or one over the broker's size limit. A lost connection, a ``basic.nack``
or no confirm within ``confirm_timeout`` is retried.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from collector.config.units import Duration
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
from collector.destinations.stream_names import AMQP_ROUTING_KEY, compile_template
from collector.destinations.stream_support import (
    SharedConnection,
    TlsConfig,
    batch_outcome,
    describe,
    inner_timeout,
    redact_url,
    ssl_context,
)


class RabbitMQConfig(DestinationConfig, tag="rabbitmq", kw_only=True):
    # amqp://user:password@host:5672/vhost (the vhost URL-encoded: %2F for "/"), amqps:// for TLS.
    url: str
    # "" is the default exchange, which routes to the queue named by the routing key.
    exchange: str
    routing_key: str
    # Declare the exchange (durable) with this type when connecting; unset: it must exist.
    exchange_type: Literal["direct", "topic", "fanout", "headers"] | None = None
    mandatory: bool = True
    # How long a publish may wait for the broker's confirm (less than timeout; unset: two thirds of it).
    confirm_timeout: Duration | None = None
    tls: TlsConfig | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "rabbitmq",
        "url": "amqp://collector:${RABBITMQ_PASSWORD}@rabbitmq.internal:5672/%2F",
        "exchange": "events",
        "routing_key": "{type}.{source}",
        "exchange_type": "topic",
        "mandatory": True,
    }

    def __post_init__(self) -> None:
        if not self.url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"url must start with amqp:// or amqps://, got {self.url!r}")
        if self.exchange == "" and self.exchange_type is not None:
            raise ValueError("exchange_type: the default exchange (\"\") cannot be declared")
        inner_timeout("confirm_timeout", self.confirm_timeout, self.timeout)
        self._routing_key = compile_template("routing_key", self.routing_key, AMQP_ROUTING_KEY)

    def confirm_wait(self) -> float:
        return inner_timeout("confirm_timeout", self.confirm_timeout, self.timeout)


class _ExchangeMissing(Exception):
    """The exchange does not exist (and the collector is not to declare it)."""


class RabbitMQDestination(Destination):
    Config = RabbitMQConfig
    display_name = "RabbitMQ"
    config: RabbitMQConfig

    def __init__(self, name: str, config: RabbitMQConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._routing_key = config._routing_key  # type: ignore[attr-defined]  # compiled with the config
        self._connection: SharedConnection[Any] = SharedConnection(self._open, self._close)
        self._tls: Any = None

    async def start(self) -> None:
        """Loads aio-pika and the TLS files; the first send connects, so that a broker down at
        start-up holds up nothing."""
        import aio_pika  # noqa: F401 -- fails here, with the package's name, when it is not installed

        if self.config.url.startswith("amqps://"):
            self._tls = ssl_context(self.config.tls)

    async def _open(self) -> tuple[Any, Any]:
        """(connection, exchange)."""
        import aio_pika
        from aio_pika.exceptions import ChannelNotFoundEntity

        c = self.config
        options: dict[str, Any] = {"timeout": c.confirm_wait(),
                                   "client_properties": {"connection_name": f"collector {self.name}"}}
        if self._tls is not None:
            options["ssl_context"] = self._tls
        connection = await aio_pika.connect(c.url, **options)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            if c.exchange == "":
                exchange = channel.default_exchange
            elif c.exchange_type is not None:
                exchange = await channel.declare_exchange(c.exchange, c.exchange_type, durable=True)
            else:
                try:
                    exchange = await channel.get_exchange(c.exchange, ensure=True)
                except ChannelNotFoundEntity as error:
                    raise _ExchangeMissing(str(error)) from None
        except BaseException:
            await connection.close()
            raise
        return connection, exchange

    @staticmethod
    async def _close(opened: tuple[Any, Any]) -> None:
        await opened[0].close()

    async def send(self, batch: list[Envelope]) -> Outcome:
        import aio_pika

        c = self.config
        try:
            opened = await self._connection.get()
        except _ExchangeMissing as error:
            return reject(f"RabbitMQ exchange {c.exchange!r} does not exist: {error}")
        except Exception as error:  # noqa: BLE001 -- any failure to connect is the broker's to fix
            return retry(f"cannot connect to RabbitMQ at {redact_url(c.url)}: {describe(error)}")
        connection, exchange = opened
        if connection.is_closed:
            await self._connection.lost(opened)
            return retry("the RabbitMQ connection was closed")
        keys = []
        publishes = []
        # Each publish is a task, started in order: aiormq writes them to the channel in the order
        # they ask for its lock; the confirms are then awaited together.
        for envelope in batch:
            routing_key, message_id = self._routing_key.address(envelope)
            message = aio_pika.Message(
                envelope.raw, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=message_id or None, headers={"source": envelope.source},
            )
            keys.append(routing_key)
            publishes.append(asyncio.ensure_future(
                exchange.publish(message, routing_key, mandatory=c.mandatory, timeout=c.confirm_wait())))
        try:
            await asyncio.wait(publishes)
        except asyncio.CancelledError:
            for task in publishes:
                task.cancel()
            raise
        results = []
        broken = False
        for routing_key, task in zip(keys, publishes):
            error = task.exception()
            outcome, channel_lost = (DELIVERED, False) if error is None else _outcome(error, c.exchange, routing_key)
            results.append(outcome)
            broken |= channel_lost
        if broken:
            await self._connection.lost(opened)
        return batch_outcome(batch, results)

    async def close(self) -> None:
        await self._connection.close()


def _outcome(error: BaseException, exchange: str, routing_key: str) -> tuple[Outcome, bool]:
    """The outcome for a failed publish, and whether the channel is lost with it."""
    from aio_pika.exceptions import (
        ChannelNotFoundEntity,
        ChannelPreconditionFailed,
        DeliveryError,
        PublishError,
    )

    where = f"RabbitMQ exchange {exchange!r}, routing key {routing_key!r}"
    if isinstance(error, PublishError):  # basic.return: no queue takes it
        reply = error.args[0] if error.args else "NO_ROUTE"
        return reject(f"{where}: unroutable ({reply}): no queue is bound to take it"), False
    if isinstance(error, DeliveryError):  # basic.nack: the broker could not take it now
        return retry(f"{where}: the broker refused it (basic.nack)"), False
    if isinstance(error, (ChannelNotFoundEntity, ChannelPreconditionFailed)):  # 404, 406 (e.g. too large)
        return reject(f"{where}: {describe(error)}"), True
    if isinstance(error, asyncio.TimeoutError):
        return retry(f"{where}: no confirm from the broker in time"), True
    return retry(f"{where}: {describe(error)}"), True
