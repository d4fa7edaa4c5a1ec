"""The contract fake of the amplitude destination: the Amplitude double (tests/vendors/amplitude.py),
and what Amplitude must have received for the contract's events (written out here from the
events themselves, not from the destination's code)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import msgspec

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.amplitude import AmplitudeDouble

API_KEY = "amp-key"


def ms(timestamp: str) -> int:
    return round(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def browser_fields(event: dict) -> dict[str, Any]:
    """What the presets take from an analytics.js event's context (the contract's events)."""
    context = event["context"]
    referrer = context["page"]["referrer"]
    return {"language": context["locale"], "ip": context["ip"], "library": context["library"]["name"],
            "platform": "Web",
            "user_properties": {"$set": {"referrer": referrer}, "$setOnce": {"initial_referrer": referrer}}}


def expected_events(event: dict) -> list[dict[str, Any]]:
    """The Amplitude events of a track "Order Completed" or a page call from analytics.js."""
    main = {"user_id": event["userId"], "device_id": event["anonymousId"], "time": ms(event["timestamp"]),
            "insert_id": event["messageId"], **browser_fields(event)}
    if event["type"] == "page":
        return [{**main, "event_type": f"Viewed {event['name']}", "event_properties": event["properties"]}]
    properties = event["properties"]
    products = properties["products"]
    shared = {k: v for k, v in main.items() if k not in ("insert_id", "user_properties")}
    order = {**main, "event_type": event["event"], "revenue": properties["revenue"], "revenueType": "Purchase",
             "event_properties": {k: v for k, v in properties.items() if k != "products"}}
    return [order] + [{**shared, "event_type": "Product Purchased", "event_properties": product,
                       "insert_id": f"{event['messageId']}-{n}"} for n, product in enumerate(products, start=2)]


def expected_identification(event: dict) -> dict[str, Any]:
    """An identify call from a server library: user ID and traits."""
    return {"user_id": event["userId"], "user_properties": event["traits"],
            "library": event["context"]["library"]["name"]}


class ContractFake(Fake):
    """Amplitude's HTTP V2 and Identify APIs (the US project ``amp-key``)."""

    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.double = AmplitudeDouble(api_key=API_KEY)

    async def __aenter__(self) -> ContractFake:
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "endpoint": self.double.url, "api_key": API_KEY, "secret_key": "amp-secret"}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        events = [msgspec.json.decode(envelope.raw) for envelope in batch]
        calls = self.double.requests
        assert all(call.status == 200 and call.method == "POST" for call in calls), [(c.path, c.status) for c in calls]
        uploads = [call for call in calls if call.path == "/2/httpapi"]
        identifies = [call for call in calls if call.path == "/identify"]
        assert len(uploads) + len(identifies) == len(calls), [c.path for c in calls]
        for call in uploads:
            assert call.headers["Content-Type"] == "application/json"
            assert set(call.json) == {"api_key", "events"} and call.json["api_key"] == API_KEY
        want_events = [e for event in events if event["type"] in ("track", "page") for e in expected_events(event)]
        got_events = [e for call in uploads for e in call.json["events"]]
        assert sorted(got_events, key=lambda e: e["insert_id"]) == sorted(want_events, key=lambda e: e["insert_id"])
        # One request per preset: the order (with its products) apart from the page.
        assert sorted(len(call.json["events"]) for call in uploads) == [1, 3]
        for call in identifies:
            assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
            assert set(call.form) == {"api_key", "identification"} and call.form["api_key"] == API_KEY
        got = [i for call in identifies for i in json.loads(call.form["identification"])]
        assert got == [expected_identification(event) for event in events if event["type"] == "identify"]
        assert self.double.accepted == got_events and self.double.identifications == got

    error_cases = [
        ErrorCase("429 with Retry-After",
                  lambda fake: fake.double.fail_next(429, headers={"Retry-After": "7"}, times=3),
                  "retry", 7.0, "HTTP 429"),
        ErrorCase("503", lambda fake: fake.double.fail_next(503, {"code": 503, "error": "busy"}, times=3),
                  "retry", None, "HTTP 503"),
        ErrorCase("500 with Retry-After",
                  lambda fake: fake.double.fail_next(500, headers={"Retry-After": "3"}, times=3),
                  "retry", 3.0, "HTTP 500"),
        ErrorCase("api_key unknown to Amplitude (its 400)", lambda fake: setattr(fake.double, "api_key", "another"),
                  "retry", None, "check the destination's api_key"),
    ]
