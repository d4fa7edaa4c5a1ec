"""The contract fake of google_ads: the Google Ads and OAuth doubles of tests/vendors/, with the
settings pointed at them and one mapping that takes the contract's three events (a track, an
identify and a page) as click conversions, each with its messageId as a click id."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.vendors.google_ads import GoogleAdsDouble
from tests.vendors.oauth import OAuthDouble

CUSTOMER_ID = "1234567890"
MANAGER_ID = "1112223333"
CONVERSION_ACTION = "456"
DEVELOPER_TOKEN = "dev-token-contract-0123"
CLIENT_ID = "contract-client.apps.googleusercontent.com"
CLIENT_SECRET = "contract-client-secret-4567"
REFRESH_TOKEN = "1//contract-refresh-token-89ab"

EVERY_EVENT = 'type = "track" or type = "identify" or type = "page"'


def _quota_exhausted(delay: str) -> dict[str, Any]:
    """Google's 429: RESOURCE_EXHAUSTED with the delay it asks for in the GoogleAdsFailure."""
    return {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                      "status": "RESOURCE_EXHAUSTED", "details": [{
                          "@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure",
                          "errors": [{"errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
                                      "message": "Too many requests. Retry in 7 seconds.",
                                      "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER",
                                                                        "rateName": "Number of operations",
                                                                        "retryDelay": delay}}}]}]}}


def _set(name: str, value: Any):
    return lambda fake: setattr(fake.ads, name, value)


class ContractFake(Fake):
    async def __aenter__(self) -> ContractFake:
        self.oauth = OAuthDouble(clients={CLIENT_ID: CLIENT_SECRET}, refresh_tokens=[REFRESH_TOKEN])
        await self.oauth.start()
        self.ads = GoogleAdsDouble(self.oauth, developer_token=DEVELOPER_TOKEN, customer_ids=[CUSTOMER_ID],
                                   login_customer_id=MANAGER_ID, conversion_actions=[CONVERSION_ACTION])
        await self.ads.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ads.close()
        await self.oauth.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        settings = copy.deepcopy(example)
        settings.update(
            endpoint=self.ads.url, customer_id="123-456-7890", login_customer_id="111-222-3333",
            developer_token=DEVELOPER_TOKEN,
            oauth={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN,
                   "token_url": self.oauth.token_url},
            presets=False,
            mappings=[{"name": "Contract", "action": "upload_click_conversion", "trigger": EVERY_EVENT,
                       "fields": {"conversion_action": CONVERSION_ACTION, "gclid": {"@path": "$.messageId"}}}],
        )
        return settings

    def assert_delivered(self, batch: list[Envelope]) -> None:
        uploads = [call for call in self.ads.requests if call.path.endswith(":uploadClickConversions")]
        assert len(uploads) == 1, [call.path for call in self.ads.requests]
        call = uploads[0]
        assert call.path == f"/v22/customers/{CUSTOMER_ID}:uploadClickConversions"
        assert call.headers["developer-token"] == DEVELOPER_TOKEN
        assert call.headers["login-customer-id"] == MANAGER_ID
        assert call.status == 200 and "partialFailureError" not in call.answer, call.answer
        events = [msgspec.json.decode(envelope.raw) for envelope in batch]
        assert [c["gclid"] for c in self.ads.accepted] == [e["messageId"] for e in events]
        for conversion, event in zip(self.ads.accepted, events):
            assert conversion["conversionAction"] == f"customers/{CUSTOMER_ID}/conversionActions/{CONVERSION_ACTION}"
            stamp = event["timestamp"]
            assert conversion["conversionDateTime"] == f"{stamp[:10]} {stamp[11:19]}+00:00"
        order = self.ads.accepted[0]
        properties = events[0]["properties"]
        assert (order["orderId"], order["conversionValue"], order["currencyCode"]) == (
            properties["order_id"], properties["total"], properties["currency"])
        assert json.loads(call.decoded)["partialFailure"] is True

    error_cases = [
        ErrorCase("429 with Google's retry delay", lambda fake: fake.ads.fail_next(429, _quota_exhausted("7s")),
                  "retry", 7.0, "quotaError.RESOURCE_EXHAUSTED"),
        ErrorCase("429 without a delay", lambda fake: fake.ads.fail_next(429), "retry", 1.0, "HTTP 429"),
        ErrorCase("503", lambda fake: fake.ads.fail_next(503), "retry", None, "HTTP 503 UNAVAILABLE"),
        ErrorCase("500 with Retry-After", lambda fake: fake.ads.fail_next(500, headers={"Retry-After": "120"}),
                  "retry", 120.0, "HTTP 500 INTERNAL"),
        ErrorCase("every click expired", lambda fake: fake.ads.add_rule("EXPIRED_EVENT", lambda conversion: True),
                  "reject", None, "conversionUploadError.EXPIRED_EVENT"),
        ErrorCase("clicks too recent", lambda fake: fake.ads.add_rule("TOO_RECENT_EVENT", lambda conversion: True),
                  "retry", None, "TOO_RECENT_EVENT"),
        ErrorCase("refresh token revoked", lambda fake: fake.oauth.revoke_refresh_token(REFRESH_TOKEN),
                  "retry", None, "invalid_grant"),
        ErrorCase("developer token refused", _set("developer_token", "another-token"),
                  "retry", None, "DEVELOPER_TOKEN_INVALID"),
        ErrorCase("no access to the account", _set("customer_ids", {"9999999999"}),
                  "retry", None, "USER_PERMISSION_DENIED"),
    ]
