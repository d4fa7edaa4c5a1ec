"""The Facebook Conversions API destination's fake for the shared contract test: the Meta Graph
double (tests/vendors/facebook.py) with its clock and ours at the time the contract's stored events
were sent (Meta refuses events more than 7 days old), and what those events must become there."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from typing import Any

import msgspec

from collector.destinations.base import Envelope
from collector.destinations.facebook_conversions import FacebookConversions
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.facebook import FacebookDouble

TOKEN = "EAAcontract-system-user-token"
PIXEL = "1234567890123456"
# A minute after the contract's stored events (2024-11-28T13:26Z).
FROZEN_NOW = datetime.fromisoformat("2024-11-28T13:27:00+00:00").timestamp()

# Meta has no use for an identify (neither has Segment's Meta destination); the contract sends one,
# so the fake's config sends identifies as a custom event, as an operator might, with the traits'
# e-mail and address: a server event that is not a browser's, with hashed Unicode identifiers.
IDENTIFY_MAPPING = {
    "name": "Identify", "action": "event", "trigger": 'type = "identify"',
    "fields": {"event_name": "Identify", "em": {"@path": "$.traits.email"},
               "ct": {"@path": "$.traits.address.city"}, "country": {"@path": "$.traits.address.country"}},
}

RATE_LIMITED = {"error": {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17,
                          "is_transient": True, "fbtrace_id": "Ax1"}}
BAD_TOKEN = {"error": {"message": "Invalid OAuth access token - Cannot parse access token", "type": "OAuthException",
                       "code": 190, "fbtrace_id": "Ax2"}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def expected_event(event: dict[str, Any]) -> dict[str, Any]:
    """What Meta must receive for one of the contract's stored events, written from the Segment
    spec and Meta's documentation, not from the destination's code."""
    if event["type"] == "identify":  # Meta's rules: e-mail trimmed and lower-cased, city letters only
        traits = event["traits"]
        return {"event_name": "Identify", "event_time": int(datetime.fromisoformat(event["timestamp"]).timestamp()),
                "event_id": event["messageId"], "action_source": "other",
                "user_data": {"em": sha(traits["email"].lower()), "ct": sha("köln"), "country": sha("de"),
                              "external_id": sha(event["userId"])}}
    context = event["context"]
    expected: dict[str, Any] = {
        "event_name": "Purchase" if event["type"] == "track" else "PageView",
        "event_time": int(datetime.fromisoformat(event["timestamp"]).timestamp()),
        "event_id": event["messageId"],
        "action_source": "website",
        "event_source_url": context["page"]["url"],
        "user_data": {"external_id": sha(event.get("userId") or event["anonymousId"]),
                      "client_ip_address": context["ip"], "client_user_agent": context["userAgent"]},
    }
    if event["type"] == "track":
        products = event["properties"]["products"]
        expected["custom_data"] = {
            "value": event["properties"]["revenue"],
            "currency": event["properties"]["currency"],
            "contents": [{"id": p["product_id"], "quantity": p["quantity"], "item_price": p["price"]}
                         for p in products],
            "num_items": sum(p["quantity"] for p in products),
            "content_type": "product",
            "order_id": event["properties"]["order_id"],
        }
    return expected


class ContractFake(Fake):
    """Meta's Graph API: the Conversions API refusing what Meta refuses, a whole batch for one event."""

    async def __aenter__(self) -> ContractFake:
        self._clock = FacebookConversions.__dict__["clock"]
        FacebookConversions.clock = staticmethod(lambda: FROZEN_NOW)
        self.double = FacebookDouble(TOKEN, pixel_ids=[PIXEL], clock=lambda: FROZEN_NOW)
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        FacebookConversions.clock = self._clock
        await self.double.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "pixel_id": PIXEL, "access_token": TOKEN, "endpoint": self.double.url,
                "mappings": [IDENTIFY_MAPPING]}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        requests = self.double.requests
        assert requests and all(r.status == 200 and not r.scripted for r in requests), \
            [(r.path, r.status, r.answer) for r in requests]
        for request in requests:
            assert (request.method, request.path, request.query) == ("POST", f"/v24.0/{PIXEL}/events", {})
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            assert request.headers["Content-Type"] == "application/json"
            assert set(request.json) == {"data"}
        got = sorted((e.event for e in self.double.accepted), key=lambda e: e["event_id"])
        events = [msgspec.json.decode(e.raw) for e in batch]
        want = sorted((expected_event(e) for e in events), key=lambda e: e["event_id"])
        assert got == want, json.dumps({"got": got, "want": want}, indent=1, ensure_ascii=False)

    # The track and the identify go in two requests at once (two subscriptions, two visitors): both
    # get the answer; the page waits behind the track (the same visitor) and is held back with it.
    error_cases = [
        ErrorCase("190 bad token", lambda fake: setattr(fake.double, "access_token", "EAAsomeone-else"),
                  "retry", None, "credentials refused (Meta error #190: Invalid OAuth access token"),
        ErrorCase("17 rate limit", lambda fake: fake.double.fail_next(400, RATE_LIMITED, times=2),
                  "retry", 1.0, "rate limited (Meta error #17: (#17) User request limit reached)"),
        ErrorCase("429 retry-after", lambda fake: fake.double.fail_next(429, headers={"Retry-After": "7"}, times=2),
                  "retry", 7.0, "rate limited (Meta error #4: (#4) Application request limit reached)"),
        ErrorCase("503", lambda fake: fake.double.fail_next(503, times=2), "retry", None,
                  "Meta error #2: An unexpected error has occurred"),
        ErrorCase("500 not JSON", lambda fake: fake.double.fail_next(500, body="oops", times=2), "retry", None,
                  "HTTP 500: oops"),
        ErrorCase("unknown pixel", lambda fake: setattr(fake.double, "pixel_ids", {"42"}), "retry", None,
                  "check the destination's pixel_id"),
    ]
