"""The nats destination's contract fake: the machine's NATS server (JetStream), with a stream of
the test's own, read back message by message."""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.stream_checks import simple_name, unique
from tests.destinations.nats.support import delete_stream, make_stream, stream_messages
from tests.support.brokers import SHARED_NATS, run_blocking
from tests.support.process import free_port


def _server_down(fake: ContractFake) -> None:
    fake.closed = True


def _no_stream(fake: ContractFake) -> None:
    fake.overrides = {"subject": f"{unique('nostream')}.events", "stream": None}


def _too_large(fake: ContractFake) -> None:
    run_blocking(lambda: make_stream(SHARED_NATS, fake.stream, [f"{fake.prefix}.>"], max_msg_size=128))
    fake.overrides = {"subject": f"{fake.prefix}.all"}


def _other_stream(fake: ContractFake) -> None:
    fake.overrides = {"subject": f"{fake.prefix}.all", "stream": "SOME_OTHER_STREAM"}


class ContractFake(Fake):
    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.prefix = unique("contract")
        self.stream = self.prefix.upper()
        self.closed = False
        self.overrides: dict[str, Any] = {}

    async def __aenter__(self) -> ContractFake:
        await make_stream(SHARED_NATS, self.stream, [f"{self.prefix}.>"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await delete_stream(SHARED_NATS, self.stream)

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        url = f"nats://127.0.0.1:{free_port()}" if self.closed else SHARED_NATS
        self.settings = {**copy.deepcopy(example), "url": url, "subject": f"{self.prefix}.{example['subject']}",
                         "stream": self.stream, **self.overrides}
        return self.settings

    def assert_delivered(self, batch: list[Envelope]) -> None:
        messages = run_blocking(lambda: stream_messages(SHARED_NATS, self.stream))
        assert [m.subject for m in messages] == [simple_name(self.settings["subject"], e) for e in batch]
        assert [m.data for m in messages] == [e.raw for e in batch]
        assert [m.headers for m in messages] == [
            {"Nats-Msg-Id": e.event["messageId"], "source": e.source, "Nats-Expected-Stream": self.stream}
            for e in batch]

    error_cases = [
        ErrorCase("server down", _server_down, "retry", None, "cannot connect to NATS"),
        ErrorCase("no stream takes the subject", _no_stream, "reject", None, "no JetStream stream takes"),
        ErrorCase("over the stream's max_msg_size", _too_large, "reject", None, "message size exceeds maximum"),
        ErrorCase("lands in another stream", _other_stream, "reject", None, "expected stream does not match"),
    ]
