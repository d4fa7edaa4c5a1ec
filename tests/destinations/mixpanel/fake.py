"""The Mixpanel destination's fake for the shared contract test: the Mixpanel double
(tests/vendors/mixpanel.py), and what the contract's three stored events must become there."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.mixpanel import MixpanelDouble

from .expected import ORDER, PAGE, PROFILE_UPDATE, SECRET, TOKEN, product_purchased

BASIC = "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()


def _wrong_credentials(fake: ContractFake) -> None:
    fake.double.api_secret = "not-the-secret"
    fake.double.project_token = "not-the-token"


class ContractFake(Fake):
    """Mixpanel's /import, /engage and /groups, refusing what Mixpanel refuses."""

    async def __aenter__(self) -> ContractFake:
        self.double = MixpanelDouble(api_secret=SECRET, project_token=TOKEN, accept_token_auth=False)
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "project_token": TOKEN, "api_secret": SECRET, "endpoint": self.double.url}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        double = self.double
        assert [(r.path, r.status) for r in double.requests] and all(r.status == 200 for r in double.requests), \
            [(r.path, r.status, r.answer) for r in double.requests]
        imports = [r for r in double.requests if r.path == "/import"]
        for request in imports:
            assert request.method == "POST" and request.query == {"strict": "1"}
            assert request.headers["Authorization"] == BASIC
            assert request.headers["Content-Encoding"] == "gzip"
        assert [r.path for r in double.requests].count("/engage") == 1
        # The order with its two products, and the page; the identify's profile.
        got = {e["event"]: e for e in double.accepted if e["event"] != "Product Purchased"}
        assert got == {"Order Completed": ORDER, "Viewed Checkout Complete": PAGE}, json.dumps(got, indent=1)
        products = [e for e in double.accepted if e["event"] == "Product Purchased"]
        ids = [p["properties"].pop("$insert_id") for p in products]
        assert products == [product_purchased(1), product_purchased(2)], json.dumps(products, indent=1)
        assert len(set(ids)) == 2 and all(re.fullmatch(r"[0-9a-f]{36}", i) for i in ids)
        assert double.profile_updates == [PROFILE_UPDATE]
        assert not double.failed and not double.dropped and not double.duplicates

    error_cases = [
        ErrorCase("401 and a refused token", _wrong_credentials, "retry", None, "credentials refused"),
        # Two /import requests and one /engage may be in flight at once: each gets the answer.
        ErrorCase("429 without Retry-After", lambda fake: fake.double.fail_next(429, times=3), "retry", 2.0,
                  "HTTP 429: {\"code\": 429, \"error\": \"Project exceeded rate limits"),
        ErrorCase("503 retry-after", lambda fake: fake.double.fail_next(503, headers={"Retry-After": "30"}, times=3),
                  "retry", 30.0, "HTTP 503"),
        ErrorCase("500", lambda fake: fake.double.fail_next(500, body="oops", times=3), "retry", None,
                  "HTTP 500: oops"),
    ]
