"""The rabbitmq destination's contract fake: the machine's RabbitMQ, with an exchange and a queue
of the test's own (the queue bound to every routing key), read back with basic.get."""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.stream_checks import simple_name, unique
from tests.destinations.rabbitmq.support import declare, drain, remove
from tests.support.brokers import SHARED_RABBITMQ, run_blocking
from tests.support.process import free_port


def _broker_down(fake: ContractFake) -> None:
    fake.closed = True


def _unroutable(fake: ContractFake) -> None:
    # The queue is there but bound to nothing; one routing key, so that the events share a reason.
    run_blocking(lambda: remove(SHARED_RABBITMQ, [], [fake.queue]))
    run_blocking(lambda: declare(SHARED_RABBITMQ, fake.exchange, fake.queue, bind=False))
    fake.overrides = {"routing_key": "all.web"}


def _no_exchange(fake: ContractFake) -> None:
    fake.overrides = {"exchange": unique("missing"), "exchange_type": None}


class ContractFake(Fake):
    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.queue = unique("contract")
        self.exchange = f"{self.queue}.events"
        self.closed = False
        self.overrides: dict[str, Any] = {}

    async def __aenter__(self) -> ContractFake:
        await declare(SHARED_RABBITMQ, self.exchange, self.queue)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await remove(SHARED_RABBITMQ, [self.exchange], [self.queue])

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        assert example.get("exchange_type") in (None, "topic"), "the fake declares a topic exchange"
        url = f"amqp://guest:guest@127.0.0.1:{free_port()}/" if self.closed else SHARED_RABBITMQ
        self.settings = {**copy.deepcopy(example), "url": url, "exchange": self.exchange, **self.overrides}
        return self.settings

    def assert_delivered(self, batch: list[Envelope]) -> None:
        messages = run_blocking(lambda: drain(SHARED_RABBITMQ, self.queue))
        assert [m.routing_key for m in messages] == [simple_name(self.settings["routing_key"], e) for e in batch]
        assert [m.exchange for m in messages] == [self.exchange] * len(batch)
        assert [m.body for m in messages] == [e.raw for e in batch]
        assert [m.message_id for m in messages] == [e.event["messageId"] for e in batch]
        assert [m.headers for m in messages] == [{"source": e.source} for e in batch]
        assert {(m.content_type, int(m.delivery_mode)) for m in messages} == {("application/json", 2)}

    error_cases = [
        ErrorCase("broker down", _broker_down, "retry", None, "cannot connect to RabbitMQ"),
        ErrorCase("unroutable", _unroutable, "reject", None, "NO_ROUTE"),
        ErrorCase("no such exchange", _no_exchange, "reject", None, "does not exist"),
    ]
