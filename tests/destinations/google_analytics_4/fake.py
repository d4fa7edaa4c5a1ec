"""The contract test's fake of GA4: the recording GA4 double (tests/vendors/ga4.py) with the
contract's clock, an example pointed at it, and GA4's answers."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import msgspec

from collector.destinations.base import Envelope
from collector.destinations.google_analytics_4 import GoogleAnalytics4
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.ga4 import GA4Double

# The contract's events were received at 2024-11-28T13:26:01Z; GA4 takes them within 72 hours.
NOW = datetime.fromisoformat("2024-11-28T13:30:00Z").timestamp()

# GA4 has no use for an identify (neither has Segment's GA4 destination); the contract sends one,
# so the fake's config sends identifies as a custom event with user properties, as an operator might.
IDENTIFY_MAPPING = {
    "name": "Identify", "action": "custom_event", "trigger": 'type = "identify"',
    "fields": {"name": "identify", "user_properties": {"plan": {"@path": "$.traits.plan"},
                                                       "logins": {"@path": "$.traits.logins"}}},
}


def _micros(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000)


def _fail(status: int, headers: dict[str, str] | None = None, times: int = 3) -> Any:
    return lambda fake: fake.double.fail_next(status, headers=headers, times=times)


class ContractFake(Fake):
    async def __aenter__(self) -> ContractFake:
        self.double = await GA4Double(api_secret="contract-secret", measurement_id="G-CONTRACT1", now=lambda: NOW).start()
        self._clock = GoogleAnalytics4.__dict__["clock"]
        GoogleAnalytics4.clock = staticmethod(lambda: NOW)
        return self

    async def __aexit__(self, *exc: object) -> None:
        GoogleAnalytics4.clock = self._clock
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "endpoint": self.double.url, "api_secret": "contract-secret",
                "measurement_id": "G-CONTRACT1", "mappings": [IDENTIFY_MAPPING]}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        assert self.double.invalid == []
        calls = self.double.requests
        assert [(c.method, c.path, c.query) for c in calls] == [
            ("POST", "/mp/collect", {"measurement_id": "G-CONTRACT1", "api_secret": "contract-secret"})] * 3
        track, _, page = (msgspec.json.decode(e.raw) for e in batch)
        got = {e.name: e for e in self.double.accepted}
        assert sorted(got) == ["identify", "page_view", "purchase"]

        purchase = got["purchase"]
        assert (purchase.client_id, purchase.user_id) == (track["anonymousId"], "user-4711")
        assert purchase.timestamp_micros == _micros(track["timestamp"])
        products = track["properties"]["products"]
        assert purchase.params == {
            "transaction_id": "50314b8e9bcf000000000000", "currency": "EUR", "value": 27.5,
            "engagement_time_msec": 1,
            "items": [{"item_id": p["product_id"], "item_name": p["name"], "price": p["price"],
                       "quantity": p["quantity"]} for p in products],
        }
        identify = got["identify"]
        assert (identify.client_id, identify.user_id) == ("user-4711", "user-4711")  # no anonymousId
        assert identify.user_properties == {"plan": {"value": "pro"}, "logins": {"value": 12}}
        assert identify.params == {"engagement_time_msec": 1}
        page_view = got["page_view"]
        assert (page_view.client_id, page_view.user_id) == (page["anonymousId"], None)
        assert page_view.timestamp_micros == _micros(page["timestamp"])
        assert page_view.params == {
            "page_location": track["context"]["page"]["url"], "page_referrer": track["context"]["page"]["referrer"],
            "page_title": track["context"]["page"]["title"], "engagement_time_msec": 1,
        }

    error_cases = [
        ErrorCase("500", _fail(500), "retry", None, "HTTP 500"),
        ErrorCase("503 retry-after", _fail(503, {"Retry-After": "30"}), "retry", 30.0, "HTTP 503"),
        ErrorCase("429 retry-after", _fail(429, {"Retry-After": "12"}), "retry", 12.0, "HTTP 429"),
    ]
