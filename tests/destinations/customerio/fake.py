"""The Customer.io destination's fake for the shared contract test: the Track API v2 double
(tests/vendors/customerio.py), and the entities the contract's three stored events must become."""

from __future__ import annotations

import base64
import calendar
import copy
import json
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake, stored_events
from tests.vendors.customerio import CustomerIODouble

SITE_ID, API_KEY = "site-contract", "cio-contract-key"


def seconds(iso: str) -> int:
    """Unix seconds of 'YYYY-MM-DDTHH:MM:SS[.fff]Z', by the calendar, not by the code under test."""
    date, time = iso.rstrip("Z").split("T")
    year, month, day = map(int, date.split("-"))
    hour, minute, second = (int(float(x)) for x in time.split(":"))
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def expected_entities() -> list[dict[str, Any]]:
    track, identify, page = stored_events()
    traits = {k: v for k, v in identify["traits"].items() if k != "createdAt"}
    return [
        {"type": "person", "action": "event", "identifiers": {"id": "user-4711"}, "name": "Order Completed",
         "id": track["messageId"], "attributes": track["properties"], "timestamp": seconds(track["timestamp"])},
        {"type": "person", "action": "identify", "identifiers": {"id": "user-4711"},
         "attributes": {**traits, "created_at": seconds("2023-02-01T09:30:00Z")},
         "timestamp": seconds(identify["timestamp"])},
        {"type": "person", "action": "page", "identifiers": {"anonymous_id": page["anonymousId"]},
         "name": page["properties"]["url"], "id": page["messageId"], "attributes": page["properties"],
         "timestamp": seconds(page["timestamp"])},
    ]


class ContractFake(Fake):
    """Customer.io's Track API, checking what it checks (Basic auth, entity shapes, sizes)."""

    async def __aenter__(self) -> ContractFake:
        self.double = CustomerIODouble(site_id=SITE_ID, api_key=API_KEY)
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "site_id": SITE_ID, "api_key": API_KEY, "endpoint": self.double.url}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        requests = self.double.requests
        assert requests and all(r.status == 200 and not r.scripted for r in requests), \
            [(r.path, r.status, r.answer) for r in requests]
        auth = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()
        for request in requests:
            assert (request.method, request.path, request.query) == ("POST", "/api/v2/batch", {})
            assert request.headers["Authorization"] == auth
            assert request.headers["Content-Type"] == "application/json"
        assert len(batch) == 3
        key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
        got = sorted(self.double.accepted, key=key)
        want = sorted(expected_entities(), key=key)
        assert got == want, json.dumps({"got": got, "want": want}, indent=1, ensure_ascii=False)

    error_cases = [
        ErrorCase("401 wrong key", lambda fake: setattr(fake.double, "api_key", "other"),
                  "retry", None, "credentials refused (HTTP 401"),
        # Three requests (one per action) may be in flight at once: every one gets the answer.
        ErrorCase("429 retry-after", lambda fake: fake.double.fail_next(429, headers={"Retry-After": "7"}, times=3),
                  "retry", 7.0, "HTTP 429"),
        ErrorCase("503", lambda fake: fake.double.fail_next(503, times=3), "retry", None, "HTTP 503"),
        ErrorCase("500", lambda fake: fake.double.fail_next(500, body="oops", times=3), "retry", None, "HTTP 500: oops"),
    ]
