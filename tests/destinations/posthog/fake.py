"""The PostHog destination's fake for the shared contract test: the PostHog capture double
(tests/vendors/posthog.py), and what the contract's three stored events must become there."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.posthog import PostHogDouble

from .expected import API_KEY, expected_event


class ContractFake(Fake):
    """PostHog capture, checking what the vendor checks (api_key, event, distinct_id, sizes)."""

    async def __aenter__(self) -> ContractFake:
        self.double = PostHogDouble(api_key=API_KEY)
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "api_key": API_KEY, "endpoint": self.double.url}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        requests = self.double.requests
        assert requests and all(r.status == 200 and not r.scripted for r in requests), \
            [(r.path, r.status, r.answer) for r in requests]
        for request in requests:
            assert (request.method, request.path, request.query) == ("POST", "/batch/", {})
            assert request.headers["Content-Type"] == "application/json"
            assert set(request.json) == {"api_key", "historical_migration", "batch"}
            assert request.json["historical_migration"] is False
        got = sorted(({"event": e.event, "distinct_id": e.distinct_id, "properties": e.properties,
                       "timestamp": e.timestamp, "uuid": e.uuid} for e in self.double.accepted),
                     key=lambda e: e["uuid"])
        want = sorted((expected_event(msgspec.json.decode(e.raw)) for e in batch), key=lambda e: e["uuid"])
        assert got == want, json.dumps({"got": got, "want": want}, indent=1, ensure_ascii=False)
        assert not self.double.dropped and not self.double.warnings

    error_cases = [
        ErrorCase("401 not the project's key", lambda fake: setattr(fake.double, "api_key", "phc_other"),
                  "retry", None, "credentials refused (HTTP 401: API key is not valid"),
        # Three requests (one per action) may be in flight at once: every one gets the answer.
        ErrorCase("429 retry-after", lambda fake: fake.double.fail_next(429, headers={"Retry-After": "7"}, times=3),
                  "retry", 7.0, "HTTP 429: rate limited"),
        ErrorCase("503 retry-after", lambda fake: fake.double.fail_next(503, headers={"Retry-After": "120"}, times=3),
                  "retry", 120.0, "HTTP 503: transient error, please retry"),
        ErrorCase("500", lambda fake: fake.double.fail_next(500, body="oops", times=3),
                  "retry", None, "HTTP 500: oops"),
    ]
