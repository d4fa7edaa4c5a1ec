"""Google Ads and its OAuth endpoint as recording doubles (tests/vendors/), and a google_ads
destination built against them."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import msgspec
import pytest

from collector.config.units import decode_hook
from collector.destinations.base import BuildContext, Outcome
from collector.destinations.google_ads import GoogleAds, GoogleAdsSettings
from collector.metrics import Metrics
from tests.vendors.google_ads import GoogleAdsDouble
from tests.vendors.oauth import OAuthDouble

CID = "1234567890"
MANAGER = "1112223333"
DEV = "dev-token-unit-0123"
CLIENT_ID = "unit-client.apps.googleusercontent.com"
CLIENT_SECRET = "unit-client-secret-4567"
REFRESH = "1//unit-refresh-token-89ab"
ACTION_ID = "456"
LIST_ID = "4242"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Google:
    """The two doubles, started; ``settings(**overrides)`` points a destination at them."""

    def __init__(self, **ads_options: Any) -> None:
        self.oauth = OAuthDouble(clients={CLIENT_ID: CLIENT_SECRET}, refresh_tokens=[REFRESH])
        self.options = {"developer_token": DEV, "customer_ids": [CID], "login_customer_id": MANAGER,
                        "conversion_actions": [ACTION_ID, "789"], "user_list_ids": [LIST_ID, "5151"],
                        **ads_options}

    async def __aenter__(self) -> Google:
        await self.oauth.start()
        self.ads = GoogleAdsDouble(self.oauth, **self.options)
        await self.ads.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ads.close()
        await self.oauth.close()

    def settings(self, **overrides: Any) -> GoogleAdsSettings:
        data = {
            "type": "google_ads", "endpoint": self.ads.url, "customer_id": "123-456-7890",
            "login_customer_id": "111-222-3333", "developer_token": DEV,
            "oauth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH,
                      "token_url": self.oauth.token_url},
            "mappings": [{"name": "Click Conversion", "fields": {"conversion_action": ACTION_ID}}],
            **overrides,
        }
        return msgspec.convert(data, GoogleAdsSettings, strict=False, dec_hook=decode_hook)

    def calls(self, suffix: str) -> list[Any]:
        return [call for call in self.ads.requests if call.path.endswith(suffix)]


@pytest.fixture
async def google():
    async with Google() as doubles:
        yield doubles


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def build(google: Google, http: aiohttp.ClientSession, **overrides: Any) -> GoogleAds:
    destination = GoogleAds("ads", google.settings(**overrides), BuildContext(http, ""))
    destination.bind_metrics(Metrics())
    return destination


def kinds(outcome: Outcome, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


def order(n: int, gclid: str | None = None, **properties: Any) -> dict[str, Any]:
    """An Order Completed as analytics.js sends it, with the click id the site kept."""
    props = {"order_id": f"o-{n}", "total": 30 + n, "currency": "usd", **properties}
    if gclid is not None:
        props["gclid"] = gclid
    return {"type": "track", "event": "Order Completed", "userId": f"u{n}", "messageId": f"m-{n}",
            "timestamp": "2024-06-10T12:00:00.250Z", "properties": props,
            "context": {"traits": {"email": f"Buyer.{n}@GMail.com", "phone": "+1 (415) 555-0100"}}}


def audience(event: str, email: str, *, key: str = "high_value", **context: Any) -> dict[str, Any]:
    """An Engage audience event: the audience key in properties, the identity in context.traits."""
    return {"type": "track", "event": event, "userId": email, "messageId": f"{event}-{email}",
            "properties": {"audience_key": key, key: event == "Audience Entered"},
            "context": {"traits": {"email": email}, **context}}
