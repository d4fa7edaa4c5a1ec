"""What the message-broker destinations (kafka, nats, redis, rabbitmq, mqtt) share: TLS settings,
one connection shared by every lane and opened again after a loss, and the outcome of a batch
published message by message.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec

from collector.destinations.base import Envelope, Outcome, outcomes, retry


class TlsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """TLS towards the broker. The system's CAs are trusted unless ``ca_file`` names others."""

    ca_file: str | None = None
    # A client certificate, for brokers that authenticate clients by certificate.
    cert_file: str | None = None
    key_file: str | None = None
    # false: accept any certificate and host name (a test broker with a self-signed certificate only).
    verify: bool = True

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls: cert_file and key_file go together")


def ssl_context(tls: TlsConfig | None) -> ssl.SSLContext:
    """The context for ``tls`` (default settings when None); reads the files, so call it in start()."""
    tls = tls or TlsConfig()
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def batch_outcome(batch: list[Envelope], per_event: list[Outcome]) -> Outcome:
    """The outcome of a batch whose messages the broker answered one by one.

    Messages are published in order on one connection, so when a connection fails, what fails is
    the rest of the batch. Should a broker still refuse a message for a while and take a later
    one of the same user (a RabbitMQ nack, say), that later message is sent again after the
    retried one, so that the last copies a consumer sees are in the user's order."""
    failed_users: set[str] = set()
    settled: list[Outcome] = []
    for envelope, outcome in zip(batch, per_event):
        user = envelope.user_key
        if outcome.kind == "retry":
            failed_users.add(user)
        elif outcome.kind == "ok" and user in failed_users:
            outcome = retry("sent again after an earlier event of the same user")
        settled.append(outcome)
    return outcomes(settled)


T = TypeVar("T")


class SharedConnection(Generic[T]):
    """One broker connection for every lane: opened on first use, and again after ``lost()``.

    ``open`` makes a connection and ``close`` ends one; a failed ``open`` raises to the caller
    (the send, which answers ``retry``), so a broker that is down at start-up delays nothing else.
    """

    def __init__(self, open: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]]) -> None:
        self._open = open
        self._close = close
        self._current: T | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        current = self._current
        if current is not None:
            return current
        async with self._lock:
            if self._current is None:
                self._current = await self._open()
            return self._current

    async def lost(self, connection: T) -> None:
        """``connection`` failed: close it (if it is still the current one); the next get() opens another."""
        if self._current is connection:
            self._current = None
            await self._close_quietly(connection)

    async def close(self) -> None:
        async with self._lock:
            current, self._current = self._current, None
        if current is not None:
            await self._close_quietly(current)

    async def _close_quietly(self, connection: T) -> None:
        try:
            await asyncio.wait_for(self._close(connection), 5)
        except Exception:  # noqa: BLE001 -- closing a broken connection may fail in any way; it is gone
            pass


def inner_timeout(setting: str, value: float | None, timeout: float) -> float:
    """How long one broker operation (an acknowledgement, a request) may take: ``value``, which
    must leave the send's ``timeout`` room to answer, or by default two thirds of ``timeout``."""
    if value is None:
        return timeout * 2 / 3
    if value >= timeout:
        raise ValueError(f"{setting} ({value:g}s) must be less than timeout ({timeout:g}s)")
    return value


def describe(error: BaseException) -> str:
    """An exception as a reason: its type, and its message when it has one."""
    text, kind = str(error), type(error).__name__
    if not text:
        return kind
    return text if kind in text else f"{kind}: {text}"


def redact_url(url: str) -> str:
    """``url`` with the password in it (scheme://user:password@host) replaced by ***."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
