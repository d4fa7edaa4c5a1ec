"""Append each event to a Redis stream (XADD, with redis-py's asyncio client).

Each entry has three fields: ``event`` (the event as stored, Segment's JSON), ``messageId`` (the
event's) and ``source`` (the source's name). The stream key is a template
(collector/destinations/stream_names.py), e.g. ``events:{source}``; a value keeps ASCII letters,
digits, ``.``, ``_`` and ``-`` (the rest becomes ``_``). With ``max_length`` set, every ``XADD``
trims the stream to about that many entries (``MAXLEN ~``: Redis trims whole nodes, cheaply, so
a stream may hold a little more).

A batch goes in one round trip (a pipeline, not a transaction), in order, on one connection; an
event counts as delivered once Redis has answered its ``XADD`` with the entry's ID. A key that
holds another type (WRONGTYPE), or with ``create_stream: false`` a stream that does not exist, is
rejected; a lost connection, a server loading its data, out of memory or a read-only replica is
retried. Redis keeps no record of what it was sent, so an ``XADD`` whose answer was lost with the
connection is written again when retried: consumers that must not see a copy skip a messageId
they have seen.
"""

from __future__ import annotations

from typing import Any, ClassVar

from collector.config.units import Duration
from collector.destinations.base import (
    DELIVERED,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    outcomes,
    reject,
    retry,
)
from collector.destinations.stream_names import REDIS_KEY, compile_template
from collector.destinations.stream_support import TlsConfig, batch_outcome, describe, inner_timeout, redact_url

# Answers that are about the key or the message, not about the server's state right now.
_REFUSED_FOR_GOOD = ("WRONGTYPE", "ERR string exceeds maximum allowed size")


class RedisConfig(DestinationConfig, tag="redis", kw_only=True):
    # redis://[user:password@]host:6379/db, rediss:// for TLS, unix:///path/to/redis.sock
    url: str
    stream: str
    # Trim each stream to about this many entries (MAXLEN ~); null: never trim.
    max_length: int | None = 1_000_000
    # false: XADD with NOMKSTREAM, so that events for a stream nobody created are rejected.
    create_stream: bool = True
    # How long one round trip may take (less than timeout; unset: two thirds of it).
    socket_timeout: Duration | None = None
    tls: TlsConfig | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "redis",
        "url": "redis://:${REDIS_PASSWORD}@redis.internal:6379/0",
        "stream": "events:{source}",
        "max_length": 1_000_000,
        "create_stream": True,
    }

    def __post_init__(self) -> None:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url must start with redis://, rediss:// or unix://, got {self.url!r}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length must be at least 1 (or null: never trim), got {self.max_length}")
        inner_timeout("socket_timeout", self.socket_timeout, self.timeout)
        self._stream = compile_template("stream", self.stream, REDIS_KEY)

    def socket_wait(self) -> float:
        return inner_timeout("socket_timeout", self.socket_timeout, self.timeout)


class RedisStreamDestination(Destination):
    Config = RedisConfig
    display_name = "Redis"
    config: RedisConfig

    def __init__(self, name: str, config: RedisConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._stream = config._stream  # type: ignore[attr-defined]  # compiled with the config
        self._client: Any = None

    async def start(self) -> None:
        """Makes the client (redis-py connects on the first command, and again after a loss)."""
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        c = self.config
        options: dict[str, Any] = {
            "socket_timeout": c.socket_wait(),
            "socket_connect_timeout": min(c.socket_wait(), 5),
            "client_name": "collector",
            # One layer of retries, the delivery engine's, which knows the batch and its age.
            "retry": Retry(NoBackoff(), 0),
        }
        if c.url.startswith("rediss://"):
            tls = c.tls or TlsConfig()
            options.update(ssl_ca_certs=tls.ca_file, ssl_certfile=tls.cert_file, ssl_keyfile=tls.key_file,
                           ssl_cert_reqs="required" if tls.verify else "none", ssl_check_hostname=tls.verify)
        self._client = Redis.from_url(c.url, **options)

    async def send(self, batch: list[Envelope]) -> Outcome:
        from redis.exceptions import ResponseError

        c = self.config
        pipe = self._client.pipeline(transaction=False)
        streams = []
        for envelope in batch:
            stream, message_id = self._stream.address(envelope)
            streams.append(stream)
            fields = {"event": envelope.raw, "messageId": message_id, "source": envelope.source}
            pipe.xadd(stream, fields, maxlen=c.max_length, approximate=True, nomkstream=not c.create_stream)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except ResponseError as error:  # the server refused the whole pipeline (e.g. NOAUTH)
            return outcomes([_refused(error, s) for s in streams])
        except Exception as error:  # noqa: BLE001 -- the connection failed: nothing is known to be stored
            return retry(f"Redis at {redact_url(c.url)}: {describe(error)}")
        results: list[Outcome] = []
        for stream, reply in zip(streams, replies):
            if isinstance(reply, ResponseError):
                results.append(_refused(reply, stream))
            elif isinstance(reply, Exception):
                results.append(retry(f"Redis stream {stream}: {describe(reply)}"))
            elif reply is None:  # NOMKSTREAM and no such stream
                results.append(reject(f"Redis stream {stream} does not exist (create_stream is false)"))
            else:
                results.append(DELIVERED)
        return batch_outcome(batch, results)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _refused(error: Exception, stream: str) -> Outcome:
    reason = f"Redis stream {stream}: {error}"
    return reject(reason) if str(error).startswith(_REFUSED_FOR_GOOD) else retry(reason)

