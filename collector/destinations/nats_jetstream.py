"""Publish each event to NATS JetStream (nats-py).

The message's body is the event as stored (Segment's JSON). Headers: ``Nats-Msg-Id`` = the
event's messageId, so that JetStream drops a copy sent again within the stream's
``duplicate_window`` (2 minutes by default), and ``source`` (the source's name). The subject is a
template (collector/destinations/stream_names.py), e.g. ``events.{type}.{source}``; a value keeps
ASCII letters, digits, ``_`` and ``-`` (the rest, the token separator ``.`` included, becomes
``_``), so every value is exactly one token and a stream bound to ``events.>`` takes them all.

An event counts as delivered once the stream has stored it (its PubAck; a PubAck that says
``duplicate`` means the stream already had it). The stream must exist: a subject that no stream
takes, a message over the stream's size limit, or (with ``stream`` set) a message that would land
in another stream is rejected; no server reachable or no acknowledgement in ``ack_timeout`` is
retried. The client reconnects by itself after a loss; when it gives up, the next send opens
another.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any, ClassVar

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
from collector.destinations.stream_names import NATS_SUBJECT, compile_template
from collector.destinations.stream_support import (
    SharedConnection,
    TlsConfig,
    batch_outcome,
    describe,
    inner_timeout,
    redact_url,
    ssl_context,
)

log = logging.getLogger(__name__)

# JetStream's error codes for a message it will never take: over the stream's max_msg_size, and
# stored by a stream other than the expected one.
_REFUSED_FOR_GOOD = frozenset({10054, 10060})


class NatsConfig(DestinationConfig, tag="nats", kw_only=True):
    # nats://[user:password@]host:4222 (tls:// for TLS); several servers separated by commas.
    url: str
    subject: str
    # The JetStream stream that must store the messages (sent as Nats-Expected-Stream).
    stream: str | None = None
    # How long a publish may wait for the stream's acknowledgement (less than timeout; unset:
    # two thirds of it).
    ack_timeout: Duration | None = None
    # A NATS credentials file (JWT and NKey seed), for accounts that use them.
    credentials_file: str | None = None
    tls: TlsConfig | None = None

    example: ClassVar[dict[str, Any]] = {
        "type": "nats",
        "url": "nats://${NATS_USER}:${NATS_PASSWORD}@nats.internal:4222",
        "subject": "events.{type}.{source}",
        "stream": "EVENTS",
        "ack_timeout": "10s",
    }

    def __post_init__(self) -> None:
        servers = self.servers()
        if not servers or any(not s.startswith(("nats://", "tls://", "ws://", "wss://")) for s in servers):
            raise ValueError(
                f"url must start with nats:// or tls:// (ws:// and wss:// for websockets), got {self.url!r}")
        inner_timeout("ack_timeout", self.ack_timeout, self.timeout)
        self._subject = compile_template("subject", self.subject, NATS_SUBJECT)

    def ack_wait(self) -> float:
        return inner_timeout("ack_timeout", self.ack_timeout, self.timeout)

    def servers(self) -> list[str]:
        return [s.strip() for s in self.url.split(",") if s.strip()]


class _Acks:
    """The stream's acknowledgements, matched to publishes by reply subject: one wildcard
    subscription per connection. (nats-py's own publish_async leaves a publish refused by the
    stream unanswered, its error raised inside the subscription's callback; hence this.)"""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.prefix = client.new_inbox()
        self.waiting: dict[str, asyncio.Future] = {}
        self._count = itertools.count()

    async def subscribe(self) -> None:
        await self.client.subscribe(f"{self.prefix}.*", cb=self._on_reply)

    async def _on_reply(self, message: Any) -> None:
        future = self.waiting.pop(message.subject, None)
        if future is not None and not future.done():
            future.set_result(message)

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> asyncio.Future:
        """Queues the message on the connection; the future gets the stream's answer."""
        reply = f"{self.prefix}.{next(self._count)}"
        future = asyncio.get_running_loop().create_future()
        self.waiting[reply] = future
        future.add_done_callback(lambda _: self.waiting.pop(reply, None))
        try:
            await self.client.publish(subject, payload, reply=reply, headers=headers)
        except BaseException:
            future.cancel()
            raise
        return future


class NatsDestination(Destination):
    Config = NatsConfig
    display_name = "NATS"
    config: NatsConfig

    def __init__(self, name: str, config: NatsConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._subject = config._subject  # type: ignore[attr-defined]  # compiled with the config
        self._connection: SharedConnection[_Acks] = SharedConnection(self._open, self._drain)
        self._tls: Any = None
        self.duplicates = 0  # messages the stream already had (sent again after a lost PubAck)

    async def start(self) -> None:
        """Loads nats-py and the TLS files; the first send connects, so that a server down at
        start-up holds up nothing."""
        import nats  # noqa: F401 -- fails here, with the package's name, when it is not installed

        c = self.config
        if c.tls is not None or any(s.startswith(("tls://", "wss://")) for s in c.servers()):
            self._tls = ssl_context(c.tls)

    async def _open(self) -> _Acks:
        import nats

        async def on_error(error: Exception) -> None:
            log.debug("%s: NATS connection: %s", self.name, error)

        c = self.config
        client = await nats.connect(
            servers=c.servers(), name=f"collector {self.name}", tls=self._tls,
            user_credentials=c.credentials_file, connect_timeout=min(5, int(c.ack_wait()) or 1),
            # A few attempts per server, then the client gives up and closes: the next send makes
            # a new one (nats-py would otherwise try forever inside the first connect).
            allow_reconnect=True, max_reconnect_attempts=3, reconnect_time_wait=0.5,
            error_cb=on_error,
        )
        acks = _Acks(client)
        try:
            await acks.subscribe()
        except BaseException:
            await client.close()
            raise
        return acks

    @staticmethod
    async def _drain(acks: _Acks) -> None:
        await acks.client.close()

    async def send(self, batch: list[Envelope]) -> Outcome:
        try:
            acks = await self._connection.get()
        except Exception as error:  # noqa: BLE001 -- any failure to connect is the server's to fix
            return retry(f"cannot connect to NATS at {redact_url(self.config.url)}: {describe(error)}")
        if acks.client.is_closed:
            await self._connection.lost(acks)
            return retry("the NATS connection was closed")
        timeout = self.config.ack_wait()
        results: list[Outcome] = [DELIVERED] * len(batch)
        # Published in order, one after another (each only queues the message on the connection),
        # then every acknowledgement awaited together.
        pending: list[tuple[int, str, asyncio.Future]] = []
        for i, envelope in enumerate(batch):
            subject, message_id = self._subject.address(envelope)
            headers = {"source": envelope.source}
            if message_id:
                headers["Nats-Msg-Id"] = message_id
            if self.config.stream:
                headers["Nats-Expected-Stream"] = self.config.stream
            try:
                future = await acks.publish(subject, envelope.raw, headers)
            except Exception as error:  # noqa: BLE001 -- classified below
                results[i] = _refused(error, subject)
                if results[i].kind == "retry":
                    # The rest waits with it: a later event of the same user must not overtake it.
                    results[i + 1:] = [results[i]] * (len(batch) - i - 1)
                    break
                continue
            pending.append((i, subject, future))
        if pending:
            _, late = await asyncio.wait([f for _, _, f in pending], timeout=timeout)
            for future in late:
                future.cancel()
        for i, subject, future in pending:
            if future.cancelled():
                results[i] = retry(f"NATS subject {subject}: no acknowledgement from JetStream within {timeout:g}s")
            else:
                results[i] = self._answer(future.result(), subject)
        return batch_outcome(batch, results)

    def _answer(self, message: Any, subject: str) -> Outcome:
        """The stream's answer to one publish: a PubAck, an error, or "no responders"."""
        if message.headers and message.headers.get("Status") == "503" and not message.data:
            return reject(f"NATS subject {subject}: no JetStream stream takes this subject")
        try:
            answer = json.loads(message.data)
        except ValueError:
            return retry(f"NATS subject {subject}: an answer that is not a PubAck: {message.data[:200]!r}")
        error = answer.get("error") if isinstance(answer, dict) else None
        if error is None:
            self.duplicates += bool(answer.get("duplicate"))
            return DELIVERED
        reason = (f"NATS subject {subject}: JetStream error {error.get('code')}/{error.get('err_code')}: "
                  f"{error.get('description')}")
        refused = error.get("err_code") in _REFUSED_FOR_GOOD or error.get("code") == 400
        return reject(reason) if refused else retry(reason)

    async def close(self) -> None:
        await self._connection.close()


def _refused(error: BaseException, subject: str) -> Outcome:
    """A publish the client itself refused (over the server's max_payload), or could not queue."""
    from nats.errors import MaxPayloadError

    reason = f"NATS subject {subject}: {describe(error)}"
    return reject(reason) if isinstance(error, MaxPayloadError) else retry(reason)
