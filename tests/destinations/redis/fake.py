"""The redis destination's contract fake: the machine's Redis server, with stream keys under a
prefix of the test's own, read back with XRANGE."""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.destinations.stream_checks import simple_name, unique
from tests.support.brokers import SHARED_REDIS
from tests.support.process import free_port


def _server_down(fake: ContractFake) -> None:
    fake.closed = True


def _wrong_type(fake: ContractFake) -> None:
    # The contract's events all come from source "web": one key, which now holds a string.
    fake.client.set(f"{fake.prefix}:events:web", "not a stream")


def _no_stream(fake: ContractFake) -> None:
    fake.overrides = {"create_stream": False}


class ContractFake(Fake):
    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.prefix = unique("contract")
        self.closed = False
        self.overrides: dict[str, Any] = {}
        import redis

        self.client = redis.Redis.from_url(SHARED_REDIS)

    async def __aexit__(self, *exc: object) -> None:
        keys = list(self.client.scan_iter(f"{self.prefix}:*"))
        if keys:
            self.client.delete(*keys)
        self.client.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        url = f"redis://127.0.0.1:{free_port()}/0" if self.closed else SHARED_REDIS
        self.settings = {**copy.deepcopy(example), "url": url, "stream": f"{self.prefix}:{example['stream']}",
                         **self.overrides}
        return self.settings

    def assert_delivered(self, batch: list[Envelope]) -> None:
        keys = [simple_name(self.settings["stream"], e) for e in batch]
        assert sorted(k.decode() for k in self.client.scan_iter(f"{self.prefix}:*")) == sorted(set(keys))
        entries = {key: self.client.xrange(key) for key in set(keys)}
        for key, envelope in zip(keys, batch):
            _, fields = entries[key].pop(0)
            assert fields == {b"event": envelope.raw, b"messageId": envelope.event["messageId"].encode(),
                              b"source": envelope.source.encode()}
        assert all(not rest for rest in entries.values()), entries

    error_cases = [
        ErrorCase("server down", _server_down, "retry", None, "Redis at redis://127.0.0.1"),
        ErrorCase("key holds another type", _wrong_type, "reject", None, "WRONGTYPE"),
        ErrorCase("no stream, create_stream false", _no_stream, "reject", None, "does not exist"),
    ]
