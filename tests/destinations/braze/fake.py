"""The Braze destination's fake for the shared contract test: the Braze double
(tests/vendors/braze.py), and what the contract's stored events must become there."""

from __future__ import annotations

import copy
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.braze import BrazeDouble

API_KEY = "braze-contract-key"


class ContractFake(Fake):
    """Braze /users/track, checking the key, the 75-object limits and every object's shape."""

    async def __aenter__(self) -> ContractFake:
        self.double = BrazeDouble(api_key=API_KEY)
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "api_key": API_KEY, "endpoint": self.double.url}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        requests = self.double.requests
        assert requests and all(r.status == 201 and not r.scripted and "errors" not in r.answer
                                for r in requests), [(r.path, r.status, r.answer) for r in requests]
        assert all((r.method, r.path, r.headers["Authorization"]) == ("POST", "/users/track", f"Bearer {API_KEY}")
                   for r in requests)
        # The stored batch: Order Completed (2 products), an identify, a page.
        purchases = self.double.objects("purchases")
        assert [(p["external_id"], p["product_id"], p["price"], p["quantity"], p["currency"]) for p in purchases] == [
            ("user-4711", "507f1f77bcf86cd799439011", 19, 1, "EUR"),
            ("user-4711", "505bd76785ebb509fc183733", 3.25, 2, "EUR"),
        ]
        assert all(p["time"] == "2024-11-28T13:26:00.123Z" for p in purchases)
        assert self.double.profiles == {"user-4711": {
            "_update_existing_only": False, "email": "zoë.müller@example.com", "name": "Zoë Müller",
            "plan": "pro", "logins": 12, "createdAt": "2023-02-01T09:30:00Z", "home_city": "Köln", "country": "DE"}}
        assert self.double.objects("events") == [{
            "user_alias": {"alias_name": "507f191e-810c-4197-9db3-0c1d0b1b2b3f", "alias_label": "anonymous_id"},
            "_update_existing_only": False, "name": "Viewed Checkout Complete Page", "time": "2024-11-28T13:26:01.456Z",
            "properties": {"name": "Checkout Complete", "category": "Checkout", "path": "/checkout/complete",
                           "title": "Bestellung abgeschlossen – Shop",
                           "url": "https://shop.example.com/checkout/complete?utm_source=newsletter"}}]

    error_cases = [
        ErrorCase("401 wrong key", lambda fake: setattr(fake.double, "api_key", "other"),
                  "retry", None, "credentials refused (HTTP 401"),
        ErrorCase("429 retry-after", lambda fake: fake.double.fail_next(429, headers={"Retry-After": "7"}, times=2),
                  "retry", 7.0, "HTTP 429: {\"message\": \"API rate limit reached\"}"),
        ErrorCase("500", lambda fake: fake.double.fail_next(500, times=2), "retry", None, "HTTP 500"),
    ]
