"""What the broker destinations share: a batch's outcome from per-message answers, one connection
for every lane, TLS settings."""

from __future__ import annotations

import asyncio
import ssl

import msgspec
import pytest

from collector.destinations.base import DELIVERED, Envelope, RoutingFields, reject, retry
from collector.destinations.stream_support import (
    SharedConnection,
    TlsConfig,
    batch_outcome,
    describe,
    inner_timeout,
    redact_url,
    ssl_context,
)


def envelope(seq: int, user: str) -> Envelope:
    raw = msgspec.json.encode({"type": "track", "anonymousId": user, "messageId": f"m{seq}"})
    return Envelope(seq, "web", 0, raw, msgspec.json.decode(raw, type=RoutingFields))


def test_a_batch_all_acknowledged_is_delivered() -> None:
    batch = [envelope(1, "a"), envelope(2, "b")]
    assert batch_outcome(batch, [DELIVERED, DELIVERED]) == DELIVERED


def test_after_a_retried_message_the_same_users_later_ones_are_sent_again_too() -> None:
    batch = [envelope(1, "a"), envelope(2, "b"), envelope(3, "a"), envelope(4, "b"), envelope(5, "a")]
    outcome = batch_outcome(batch, [DELIVERED, retry("nack"), DELIVERED, DELIVERED, reject("too large")])
    assert [o.kind for o in outcome.per_event] == ["ok", "retry", "ok", "retry", "reject"]
    assert outcome.per_event[1].reason == "nack"
    assert "earlier event of the same user" in outcome.per_event[3].reason


def test_one_reason_for_a_whole_batch_stays_one_outcome() -> None:
    batch = [envelope(1, "a"), envelope(2, "b")]
    assert batch_outcome(batch, [retry("down"), retry("down")]) == retry("down")


async def test_one_connection_is_opened_for_every_caller_and_again_after_a_loss() -> None:
    opened: list[int] = []
    closed: list[int] = []

    async def open_one() -> int:
        await asyncio.sleep(0.01)  # callers arriving meanwhile wait for this one
        opened.append(len(opened) + 1)
        return opened[-1]

    async def close(connection: int) -> None:
        closed.append(connection)

    shared = SharedConnection(open_one, close)
    assert await asyncio.gather(*(shared.get() for _ in range(5))) == [1] * 5
    await shared.lost(1)
    await shared.lost(1)  # a second lane reporting the same loss closes nothing more
    assert closed == [1]
    assert await shared.get() == 2
    await shared.close()
    assert closed == [1, 2] and opened == [1, 2]


async def test_a_failed_open_reaches_the_caller_and_the_next_get_tries_again() -> None:
    attempts = []

    async def open_one() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionRefusedError("refused")
        return "connected"

    async def close(connection: str) -> None:
        pass

    shared = SharedConnection(open_one, close)
    with pytest.raises(ConnectionRefusedError):
        await shared.get()
    assert await shared.get() == "connected"


async def test_closing_a_connection_that_fails_to_close_is_quiet() -> None:
    async def open_one() -> str:
        return "c"

    async def close(connection: str) -> None:
        raise OSError("already gone")

    shared = SharedConnection(open_one, close)
    await shared.get()
    await shared.close()


def test_tls_settings() -> None:
    assert ssl_context(None).verify_mode == ssl.CERT_REQUIRED
    loose = ssl_context(TlsConfig(verify=False))
    assert (loose.verify_mode, loose.check_hostname) == (ssl.CERT_NONE, False)
    with pytest.raises(msgspec.ValidationError, match="cert_file and key_file go together"):
        msgspec.convert({"cert_file": "client.pem"}, TlsConfig)
    with pytest.raises(FileNotFoundError):
        ssl_context(TlsConfig(ca_file="/nonexistent/ca.pem"))


def test_reasons_name_the_error_and_hide_passwords() -> None:
    assert describe(ConnectionRefusedError("refused")) == "ConnectionRefusedError: refused"
    assert describe(TimeoutError()) == "TimeoutError"
    assert redact_url("amqp://user:s3cret@host:5672/") == "amqp://user:***@host:5672/"
    assert redact_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("nats://host:4222") == "nats://host:4222"


def test_an_operations_timeout_leaves_the_send_room_to_answer() -> None:
    assert inner_timeout("ack_timeout", None, 30) == 20
    assert inner_timeout("ack_timeout", 5, 30) == 5
    with pytest.raises(ValueError, match=r"^ack_timeout \(30s\) must be less than timeout \(30s\)$"):
        inner_timeout("ack_timeout", 30, 30)
