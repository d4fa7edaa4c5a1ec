"""Self-tests of the analytics/ads vendor doubles: each refuses what its vendor refuses, with the
vendor's answer, and accepts the documented good examples (docs/vendors/analytics-ads.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.vendors.base import ThreadedDouble
from tests.vendors.facebook import FacebookDouble
from tests.vendors.google_ads import GoogleAdsDouble
from tests.vendors.oauth import JWT_BEARER, OAuthDouble
from tests.vendors.posthog import EVENT_MAX_BYTES, PostHogDouble


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kwargs) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


# ---------------------------------------------------------------- OAuth token endpoint


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any], private_key: Any = None, alg: str = "RS256") -> str:
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signature = b"not-signed"
    if private_key is not None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = private_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[Any, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_key, public_pem


REFRESH = {"grant_type": "refresh_token", "client_id": "cid", "client_secret": "csecret", "refresh_token": "rt-1"}


async def test_oauth_refresh_grant_issues_a_bearer_token_that_is_valid():
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"], lifetime=1800) as oauth:
        status, body = await _call("POST", oauth.token_url, data=REFRESH)
        assert status == 200
        assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
        assert oauth.valid(body["access_token"])
        assert not oauth.valid("at-made-up")
        assert oauth.token_state("at-made-up") == "unknown"
        assert [t.access_token for t in oauth.accepted] == [body["access_token"]]
        assert oauth.token_requests == 1


async def test_oauth_refresh_grant_accepts_client_credentials_in_basic_auth():
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"]) as oauth:
        form = {"grant_type": "refresh_token", "refresh_token": "rt-1"}
        status, body = await _call("POST", oauth.token_url, data=form, headers=_basic("cid", "csecret"))
        assert status == 200 and oauth.valid(body["access_token"])
        status, body = await _call("POST", oauth.token_url, data=form, headers=_basic("cid", "wrong"))
        assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"refresh_token": "rt-unknown"}, 400, "invalid_grant"),
        ({"refresh_token": ""}, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
    ],
)
async def test_oauth_refuses_bad_refresh_requests(change, status, error):
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"]) as oauth:
        answered, body = await _call("POST", oauth.token_url, data={**REFRESH, **change})
        assert (answered, body["error"]) == (status, error)
        assert oauth.accepted == []


async def test_oauth_refuses_a_json_body():
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"]) as oauth:
        status, body = await _call("POST", oauth.token_url, json=REFRESH)
        assert (status, body["error"]) == (400, "invalid_request")


async def test_oauth_revoked_refresh_token_is_invalid_grant_and_its_tokens_stop():
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"]) as oauth:
        _, body = await _call("POST", oauth.token_url, data=REFRESH)
        oauth.revoke_refresh_token("rt-1")
        assert oauth.token_state(body["access_token"]) == "revoked"
        status, body = await _call("POST", oauth.token_url, data=REFRESH)
        assert (status, body["error"]) == (400, "invalid_grant")


async def test_oauth_expire_all_and_lifetime():
    now = [1_000_000.0]
    oauth_double = OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"], lifetime=60, clock=lambda: now[0])
    async with oauth_double as oauth:
        _, first = await _call("POST", oauth.token_url, data=REFRESH)
        now[0] += 59
        assert oauth.valid(first["access_token"])
        now[0] += 1
        assert oauth.token_state(first["access_token"]) == "expired"
        _, second = await _call("POST", oauth.token_url, data=REFRESH)
        assert oauth.valid(second["access_token"])
        oauth.expire_all()
        assert oauth.token_state(second["access_token"]) == "expired"
        _, third = await _call("POST", oauth.token_url, data=REFRESH)
        assert oauth.valid(third["access_token"]) and oauth.token_requests == 3


async def test_oauth_password_grant():
    async with OAuthDouble(clients={"cid": "csecret"}, users={"ann@example.com": "pw" + "SECTOKEN"}) as oauth:
        form = {"grant_type": "password", "client_id": "cid", "client_secret": "csecret", "username": "ann@example.com"}
        status, body = await _call("POST", oauth.token_url, data={**form, "password": "pwSECTOKEN"})
        assert status == 200 and oauth.valid(body["access_token"])
        status, body = await _call("POST", oauth.token_url, data={**form, "password": "pw"})
        assert (status, body["error"]) == (400, "invalid_grant")
        wrong_client = {**form, "password": "pwSECTOKEN", "client_secret": "x"}
        status, body = await _call("POST", oauth.token_url, data=wrong_client)
        assert (status, body["error"]) == (401, "invalid_client")


async def test_oauth_extra_fields_are_answered():
    extra = {"instance_url": "https://example.my.salesforce.com"}
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"], extra_fields=extra) as oauth:
        _, body = await _call("POST", oauth.token_url, data=REFRESH)
        assert body["instance_url"] == extra["instance_url"]


def _claims(audience: str, **change: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "sa@project.iam.gserviceaccount.com", "aud": audience, "iat": now, "exp": now + 3600,
              "scope": "https://www.googleapis.com/auth/adwords"}
    claims.update(change)
    return claims


async def test_oauth_jwt_bearer_verifies_the_signature(rsa_keys):
    private_key, public_pem = rsa_keys
    async with OAuthDouble(jwt_public_key=public_pem, jwt_issuers=["sa@project.iam.gserviceaccount.com"]) as oauth:
        good = _jwt(_claims(oauth.token_url), private_key)
        status, body = await _call("POST", oauth.token_url, data={"grant_type": JWT_BEARER, "assertion": good})
        assert status == 200 and oauth.valid(body["access_token"])
        assert oauth.accepted[0].subject == "sa@project.iam.gserviceaccount.com"

        from cryptography.hazmat.primitives.asymmetric import rsa

        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = _jwt(_claims(oauth.token_url), other_key)
        status, body = await _call("POST", oauth.token_url, data={"grant_type": JWT_BEARER, "assertion": forged})
        assert (status, body["error"]) == (400, "invalid_grant")
        assert "Signature" in body["error_description"]

        unsigned = _jwt(_claims(oauth.token_url), alg="none")
        status, body = await _call("POST", oauth.token_url, data={"grant_type": JWT_BEARER, "assertion": unsigned})
        assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "someone@else.example"},
        {"aud": "https://oauth2.example/other"},
        {"exp": int(time.time()) - 10},
        {"iat": int(time.time()), "exp": int(time.time()) + 7200},
        {"exp": "soon"},
    ],
    ids=["issuer", "audience", "expired", "too-long-lived", "exp-not-a-number"],
)
async def test_oauth_jwt_bearer_checks_claims_without_a_key(change):
    async with OAuthDouble(jwt_issuers=["sa@project.iam.gserviceaccount.com"]) as oauth:
        good = _jwt(_claims(oauth.token_url))
        status, _ = await _call("POST", oauth.token_url, data={"grant_type": JWT_BEARER, "assertion": good})
        assert status == 200
        bad = _jwt(_claims(oauth.token_url, **change))
        status, body = await _call("POST", oauth.token_url, data={"grant_type": JWT_BEARER, "assertion": bad})
        assert (status, body["error"]) == (400, "invalid_grant")
        status, body = await _call("POST", oauth.token_url, data={"grant_type": JWT_BEARER, "assertion": "abc"})
        assert (status, body["error"]) == (400, "invalid_grant")


async def test_oauth_scripted_failure_uses_the_oauth_error_shape():
    async with OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"]) as oauth:
        oauth.fail_next(503)
        status, body = await _call("POST", oauth.token_url, data=REFRESH)
        assert (status, body["error"]) == (503, "temporarily_unavailable")
        assert oauth.accepted == []
        status, _ = await _call("POST", oauth.token_url, data=REFRESH)
        assert status == 200 and len(oauth.accepted) == 1


def test_oauth_runs_threaded_for_a_sender_elsewhere():
    import urllib.request
    from urllib.parse import urlencode

    with ThreadedDouble(OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"])) as oauth:
        request = urllib.request.Request(oauth.token_url, data=urlencode(REFRESH).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        assert oauth.valid(body["access_token"])


# ---------------------------------------------------------------- PostHog

PH_KEY = "phc_test_project_key"

# The fact sheet's example body (§4).
PH_EXAMPLE = {
    "api_key": PH_KEY,
    "historical_migration": False,
    "batch": [
        {
            "event": "Order Completed",
            "timestamp": "2024-06-10T12:00:00Z",
            "properties": {"distinct_id": "u1", "$current_url": "https://shop.example/checkout",
                           "$ip": "1.2.3.4", "$process_person_profile": True},
        }
    ],
}


async def test_posthog_accepts_the_documented_batch():
    async with PostHogDouble(PH_KEY) as posthog:
        status, body = await _call("POST", posthog.url + "/batch/", json=PH_EXAMPLE)
        assert (status, body) == (200, {"status": 1})
        (event,) = posthog.accepted
        assert (event.event, event.distinct_id, event.timestamp) == ("Order Completed", "u1", "2024-06-10T12:00:00Z")
        assert event.properties["$current_url"] == "https://shop.example/checkout"
        assert event.historical_migration is False and posthog.warnings == []


async def test_posthog_single_event_endpoint_and_identify_sets_the_person():
    identify = {"api_key": PH_KEY, "event": "$identify", "distinct_id": "u1", "timestamp": "2024-06-10T12:00:00Z",
                "properties": {"$set": {"email": "ann@example.com", "plan": "pro"}}}
    async with PostHogDouble(PH_KEY) as posthog:
        status, _ = await _call("POST", posthog.url + "/i/v0/e/", json=identify)
        assert status == 200
        assert posthog.persons == {"u1": {"email": "ann@example.com", "plan": "pro"}}
        second = {**identify, "properties": {"$set": {"plan": "team"}, "$set_once": {"email": "other@example.com"}}}
        await _call("POST", posthog.url + "/i/v0/e/", json=second)
        assert posthog.persons == {"u1": {"email": "ann@example.com", "plan": "team"}}


async def test_posthog_records_pageview_screen_group_and_alias():
    batch = [
        {"event": "$pageview", "distinct_id": "u1", "properties": {"$current_url": "https://shop.example/"}},
        {"event": "$screen", "distinct_id": "u1", "properties": {"$screen_name": "Home"}},
        {"event": "$groupidentify", "distinct_id": "u1",
         "properties": {"$group_type": "company", "$group_key": "g1", "$group_set": {"name": "Acme"}}},
        {"event": "$create_alias", "distinct_id": "u1", "properties": {"alias": "anon-1"}},
    ]
    async with PostHogDouble(PH_KEY) as posthog:
        status, _ = await _call("POST", posthog.url + "/batch/", json={"api_key": PH_KEY, "batch": batch})
        assert status == 200
        assert [e.event for e in posthog.accepted] == ["$pageview", "$screen", "$groupidentify", "$create_alias"]
        assert posthog.events("$screen")[0].properties["$screen_name"] == "Home"
        assert posthog.groups == {("company", "g1"): {"name": "Acme"}}
        assert posthog.aliases == [("u1", "anon-1")]


def _ph_batch(*events: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"api_key": PH_KEY, "batch": list(events), **top}


GOOD_PH_EVENT = {"event": "Signed Up", "properties": {"distinct_id": "u1"}}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (_ph_batch(), 400, "request holds no event"),
        (_ph_batch({"properties": {"distinct_id": "u1"}}), 400, "event submitted with an empty event name"),
        (_ph_batch({"event": "", "distinct_id": "u1"}), 400, "event submitted with an empty event name"),
        (_ph_batch({"event": "x", "properties": {}}), 400, "event submitted without a distinct_id"),
        (_ph_batch({"event": "x", "distinct_id": ""}), 400, "event submitted with an empty distinct_id"),
        (_ph_batch(GOOD_PH_EVENT, {"event": "x"}), 400, "event submitted without a distinct_id"),
        ({"batch": [GOOD_PH_EVENT]}, 401, "event submitted without an api_key"),
        (_ph_batch(GOOD_PH_EVENT, api_key="phc_someone_else"), 401, "API key is not valid"),
        (_ph_batch(GOOD_PH_EVENT, api_key=""), 401, "API key is not valid"),
        (_ph_batch(GOOD_PH_EVENT, {**GOOD_PH_EVENT, "api_key": "phc_other"}), 401, "inconsistent api_key"),
        (_ph_batch(GOOD_PH_EVENT, api_key="phx_personal"), 401, "personal api key"),
    ],
    ids=["empty", "no-event", "empty-event", "no-distinct-id", "empty-distinct-id", "one-bad-of-two",
         "no-key", "wrong-key", "empty-key", "mixed-keys", "personal-key"],
)
async def test_posthog_refuses_the_whole_request(body, status, message):
    async with PostHogDouble(PH_KEY) as posthog:
        answered, text = await _call("POST", posthog.url + "/batch/", json=body)
        assert answered == status and message in text
        assert posthog.accepted == []


async def test_posthog_refuses_what_is_not_json_and_a_numeric_distinct_id_is_a_string():
    async with PostHogDouble(PH_KEY) as posthog:
        status, text = await _call("POST", posthog.url + "/batch/", data=b"{not json",
                                   headers={"Content-Type": "application/json"})
        assert status == 400 and text.startswith("failed to parse request")
        status, _ = await _call("POST", posthog.url + "/batch/", json=_ph_batch({"event": "x", "distinct_id": 42}))
        assert status == 200 and posthog.accepted[0].distinct_id == "42"


async def test_posthog_size_limits():
    big = {"event": "x", "distinct_id": "u1", "properties": {"blob": "a" * EVENT_MAX_BYTES}}
    async with PostHogDouble(PH_KEY) as posthog:
        status, text = await _call("POST", posthog.url + "/batch/", json=_ph_batch(GOOD_PH_EVENT, big))
        assert (status, text) == (400, "maximum event size exceeded")
        under = {"event": "x", "distinct_id": "u1", "properties": {"blob": "a" * (EVENT_MAX_BYTES - 200)}}
        status, _ = await _call("POST", posthog.url + "/batch/", json=_ph_batch(under))
        assert status == 200
        single = {"api_key": PH_KEY, "event": "x", "distinct_id": "u1", "properties": {"blob": "a" * (2 * 1024 * 1024)}}
        status, _ = await _call("POST", posthog.url + "/i/v0/e/", json=single)
        assert status == 413
        many = _ph_batch(*[under] * 21)
        status, _ = await _call("POST", posthog.url + "/batch/", json=many)
        assert status == 413
        assert len(posthog.accepted) == 1


async def test_posthog_gzip_body_is_accepted_and_a_broken_one_refused():
    import gzip

    async with PostHogDouble(PH_KEY) as posthog:
        data = gzip.compress(json.dumps(_ph_batch(GOOD_PH_EVENT)).encode())
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        status, _ = await _call("POST", posthog.url + "/batch/", data=data, headers=headers)
        assert status == 200 and len(posthog.accepted) == 1
        status, text = await _call("POST", posthog.url + "/batch/", data=b"not gzip", headers=headers)
        assert status == 400 and text.startswith("failed to decode request")


async def test_posthog_dedups_by_uuid_and_drops_an_invalid_uuid():
    first = {**GOOD_PH_EVENT, "uuid": "0190a7a4-5b2e-7c3d-8e4f-000000000001"}
    other = {**GOOD_PH_EVENT, "uuid": "0190a7a4-5b2e-7c3d-8e4f-000000000002"}
    invalid = {**GOOD_PH_EVENT, "uuid": "not-a-uuid"}
    no_uuid = dict(GOOD_PH_EVENT)
    async with PostHogDouble(PH_KEY) as posthog:
        await _call("POST", posthog.url + "/batch/", json=_ph_batch(first, other, invalid, no_uuid))
        status, _ = await _call("POST", posthog.url + "/batch/", json=_ph_batch(first, no_uuid))
        assert status == 200
        assert [e.uuid for e in posthog.accepted] == [first["uuid"], other["uuid"], None, None]
        assert [d.uuid for d in posthog.duplicates] == [first["uuid"]]
        assert [reason for reason, _ in posthog.dropped] == ["invalid_event_uuid"]


async def test_posthog_timestamp_problems_are_warnings_not_refusals():
    now = 1_718_020_800.0  # 2024-06-10T12:00:00Z
    async with PostHogDouble(PH_KEY, clock=lambda: now) as posthog:
        events = [
            {**GOOD_PH_EVENT, "timestamp": "yesterday"},
            {**GOOD_PH_EVENT, "timestamp": "2024-06-11T12:00:00Z"},  # 24 h ahead
            {**GOOD_PH_EVENT, "timestamp": "2024-06-11T10:00:00+00:00"},  # 22 h ahead
        ]
        status, _ = await _call("POST", posthog.url + "/batch/", json=_ph_batch(*events, historical_migration=True))
        assert status == 200 and len(posthog.accepted) == 3
        assert all(e.historical_migration for e in posthog.accepted)
        assert [reason for reason, _ in posthog.warnings] == ["ignored_invalid_timestamp", "event_timestamp_in_future"]


@pytest.mark.parametrize(("status", "text"), [(429, "rate limited"), (503, "transient error, please retry")])
async def test_posthog_scripted_failures(status, text):
    async with PostHogDouble(PH_KEY) as posthog:
        posthog.fail_next(status, times=2)
        for _ in range(2):
            assert await _call("POST", posthog.url + "/batch/", json=PH_EXAMPLE) == (status, text)
        assert posthog.accepted == []
        assert (await _call("POST", posthog.url + "/batch/", json=PH_EXAMPLE))[0] == 200
        assert len(posthog.accepted) == 1


# ---------------------------------------------------------------- Google Ads

CID = "1234567890"
DEV = "test-developer-token"
ACTION = f"customers/{CID}/conversionActions/456"


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _click(**change: Any) -> dict[str, Any]:
    """The fact sheet's example conversion (§5)."""
    conversion = {
        "conversionAction": ACTION, "conversionDateTime": "2024-06-10 12:00:00+00:00", "gclid": "gclid-1",
        "orderId": "o1", "conversionValue": 30, "currencyCode": "USD",
        "userIdentifiers": [{"hashedEmail": _sha("ann@example.com")}, {"hashedPhoneNumber": _sha("+14155550100")}],
        "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"},
        "cartData": {"items": [{"productId": "sku1", "quantity": 2, "unitPrice": 15}]},
    }
    conversion.update(change)
    return {k: v for k, v in conversion.items() if v is not None}


class _Ads:
    """An OAuth double and a Google Ads double beside it, with a valid token."""

    def __init__(self, **options: Any) -> None:
        self.oauth = OAuthDouble(clients={"cid": "csecret"}, refresh_tokens=["rt-1"])
        self.options = {"customer_ids": [CID], "conversion_actions": [456, 789], **options}

    async def __aenter__(self) -> _Ads:
        await self.oauth.start()
        self.ads = GoogleAdsDouble(self.oauth, **self.options)
        await self.ads.start()
        self.token = self.oauth.issue()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ads.close()
        await self.oauth.close()

    def headers(self, **change: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "developer-token": DEV, **change}
        return {k: v for k, v in headers.items() if v is not None}

    async def upload(self, *conversions: dict[str, Any], cid: str = CID, method: str = "uploadClickConversions",
                     key: str = "conversions", headers: dict[str, str] | None = None, **top: Any) -> tuple[int, Any]:
        body = {key: list(conversions), "partialFailure": True, **top}
        body = {k: v for k, v in body.items() if v is not None}
        url = f"{self.ads.url}/v22/customers/{cid}:{method}"
        return await _call("POST", url, json=body, headers=headers or self.headers())


def _failed(body: dict[str, Any]) -> list[tuple[int, str]]:
    """(index, error code) of each failed item in a partial failure, read from Google's shape."""
    failed = []
    for detail in body["partialFailureError"]["details"]:
        for error in detail["errors"]:
            first = error["location"]["fieldPathElements"][0]
            failed.append((first["index"], next(iter(error["errorCode"].values()))))
    return failed


def _ads_code(body: dict[str, Any]) -> str:
    return next(iter(body["error"]["details"][0]["errors"][0]["errorCode"].values()))


async def test_google_ads_accepts_the_documented_click_conversion():
    async with _Ads() as ctx:
        status, body = await ctx.upload(_click())
        assert status == 200 and "partialFailureError" not in body
        assert body["results"] == [{"gclid": "gclid-1", "conversionAction": ACTION,
                                    "conversionDateTime": "2024-06-10 12:00:00+00:00",
                                    "userIdentifiers": _click()["userIdentifiers"]}]
        assert ctx.ads.accepted == [_click()]


async def test_google_ads_bearer_token_must_come_from_the_oauth_double_and_stop_after_expiry():
    async with _Ads() as ctx:
        status, body = await ctx.upload(_click(), headers=ctx.headers(Authorization=None))
        assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
        status, body = await ctx.upload(_click(), headers=ctx.headers(Authorization="Bearer at-made-up"))
        assert (status, _ads_code(body)) == (401, "OAUTH_TOKEN_INVALID")

        _, token = await _call("POST", ctx.oauth.token_url, data=REFRESH)
        ctx.token = token["access_token"]
        assert (await ctx.upload(_click(orderId="o2", gclid="g-2")))[0] == 200
        ctx.oauth.expire_all()
        status, body = await ctx.upload(_click(orderId="o3", gclid="g-3"))
        assert (status, body["error"]["status"], _ads_code(body)) == (401, "UNAUTHENTICATED", "OAUTH_TOKEN_EXPIRED")
        _, token = await _call("POST", ctx.oauth.token_url, data=REFRESH)
        ctx.token = token["access_token"]
        assert (await ctx.upload(_click(orderId="o3", gclid="g-3")))[0] == 200
        assert [c["orderId"] for c in ctx.ads.accepted] == ["o2", "o3"]


def test_google_ads_and_oauth_run_threaded_for_a_sender_elsewhere():
    import urllib.error
    import urllib.request

    with ThreadedDouble(OAuthDouble()) as oauth, ThreadedDouble(GoogleAdsDouble(oauth.double)) as ads:
        def upload(token: str) -> int:
            request = urllib.request.Request(
                f"{ads.url}/v22/customers/{CID}:uploadClickConversions", method="POST",
                data=json.dumps({"conversions": [_click()], "partialFailure": True}).encode(),
                headers={"Authorization": f"Bearer {token}", "developer-token": DEV,
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        token = oauth.issue()
        assert upload(token) == 200
        oauth.expire_all()
        assert upload(token) == 401
        assert ads.wait_for_accepted(1) == [_click()]


async def test_google_ads_bad_token_status_can_be_400():
    async with _Ads(bad_token_status=400) as ctx:
        status, body = await ctx.upload(_click(), headers=ctx.headers(Authorization="Bearer at-made-up"))
        assert (status, body["error"]["status"], _ads_code(body)) == (400, "INVALID_ARGUMENT", "OAUTH_TOKEN_INVALID")


@pytest.mark.parametrize(
    ("options", "cid", "headers", "status", "code"),
    [
        ({}, CID, {"developer-token": "wrong"}, 401, "DEVELOPER_TOKEN_INVALID"),
        ({}, CID, {"developer-token": None}, 401, "DEVELOPER_TOKEN_INVALID"),
        ({}, "123-456-7890", {}, 400, "INVALID_CUSTOMER_ID"),
        ({}, "9999999999", {}, 403, "USER_PERMISSION_DENIED"),
        ({"login_customer_id": "1112223333"}, CID, {}, 403, "USER_PERMISSION_DENIED"),
        ({"login_customer_id": "1112223333"}, CID, {"login-customer-id": "4445556666"}, 403, "USER_PERMISSION_DENIED"),
        ({"login_customer_id": "1112223333"}, CID, {"login-customer-id": "111-222-3333"}, 400,
         "INVALID_LOGIN_CUSTOMER_ID"),
        ({}, CID, {"login-customer-id": "4445556666"}, 403, "USER_PERMISSION_DENIED"),
    ],
    ids=["wrong-developer-token", "no-developer-token", "dashed-customer-id", "unknown-customer",
         "manager-header-missing", "wrong-manager", "dashed-manager", "not-a-manager"],
)
async def test_google_ads_refuses_request_level_problems(options, cid, headers, status, code):
    async with _Ads(**options) as ctx:
        answered, body = await ctx.upload(_click(), cid=cid, headers=ctx.headers(**headers))
        assert (answered, _ads_code(body)) == (status, code)
        assert ctx.ads.accepted == []


async def test_google_ads_login_customer_id_when_required():
    async with _Ads(login_customer_id="1112223333") as ctx:
        status, _ = await ctx.upload(_click(), headers=ctx.headers(**{"login-customer-id": "1112223333"}))
        assert status == 200 and len(ctx.ads.accepted) == 1


async def test_google_ads_partial_failure_names_the_failed_indexes():
    async with _Ads() as ctx:
        ctx.ads.fail_click("gclid-expired", "EXPIRED_EVENT")
        ctx.ads.fail_click("gclid-gone")
        conversions = [
            _click(gclid="g-0", orderId="o-0"),
            _click(gclid="g-1", orderId="o-1", conversionDateTime="2024-06-10T12:00:00Z"),
            _click(gclid="g-2", orderId="o-2", conversionAction=f"customers/{CID}/conversionActions/999"),
            _click(gclid="gclid-expired", orderId="o-3"),
            _click(gclid="g-4", orderId="o-4"),
            _click(gclid="gclid-gone", orderId="o-5"),
        ]
        status, body = await ctx.upload(*conversions)
        assert status == 200
        assert _failed(body) == [(1, "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"), (2, "INVALID_CONVERSION_ACTION"),
                                 (3, "EXPIRED_EVENT"), (5, "EVENT_NOT_FOUND")]
        assert body["partialFailureError"]["code"] == 3
        assert [bool(r) for r in body["results"]] == [True, False, False, False, True, False]
        assert body["results"][4]["gclid"] == "g-4"
        assert [c["gclid"] for c in ctx.ads.accepted] == ["g-0", "g-4"]


async def test_google_ads_without_partial_failure_one_bad_conversion_fails_all():
    async with _Ads() as ctx:
        bad = _click(gclid="g-1", orderId="o-1", currencyCode="XYZ")
        status, body = await ctx.upload(_click(), bad, partialFailure=None)
        assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
        error = body["error"]["details"][0]["errors"][0]
        assert error["errorCode"] == {"currencyCodeError": "UNSUPPORTED"}
        assert error["location"]["fieldPathElements"] == [{"fieldName": "conversions", "index": 1},
                                                          {"fieldName": "currency_code"}]
        assert ctx.ads.accepted == []
        status, body = await ctx.upload(_click(), partialFailure=False)
        assert status == 200 and len(ctx.ads.accepted) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"conversionDateTime": "2024-06-10 12:00:00"}, "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"),
        ({"conversionDateTime": "2024-02-30 12:00:00+00:00"}, "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"),
        ({"conversionDateTime": None}, "REQUIRED"),
        ({"conversionAction": None}, "REQUIRED"),
        ({"conversionAction": "conversionActions/456"}, "RESOURCE_NAME_MALFORMED"),
        ({"conversionAction": "customers/555/conversionActions/456"}, "INVALID_CONVERSION_ACTION"),
        ({"userIdentifiers": [{"hashedEmail": "ann@example.com"}]}, "INVALID_USER_IDENTIFIER"),
        ({"userIdentifiers": [{"hashedEmail": _sha("ann@example.com").upper()}]}, "INVALID_USER_IDENTIFIER"),
        ({"userIdentifiers": [{"hashedPhoneNumber": "+14155550100"}]}, "INVALID_USER_IDENTIFIER"),
        ({"userIdentifiers": [{"addressInfo": {"hashedFirstName": "Ann"}}]}, "INVALID_USER_IDENTIFIER"),
        ({"userIdentifiers": [{"addressInfo": {"countryCode": _sha("us")}}]}, "INVALID_USER_IDENTIFIER"),
        ({"gclid": None, "userIdentifiers": None}, "REQUIRED"),
        ({"gclid": None, "gbraid": "gb", "wbraid": "wb"}, "GBRAID_WBRAID_BOTH_SET"),
        ({"currencyCode": "usd"}, "UNSUPPORTED"),
    ],
)
async def test_google_ads_refuses_a_bad_conversion(change, code):
    async with _Ads() as ctx:
        status, body = await ctx.upload(_click(gclid="g-ok", orderId="o-ok"), _click(**change))
        assert status == 200 and _failed(body) == [(1, code)]
        assert len(ctx.ads.accepted) == 1


async def test_google_ads_accepts_user_identifiers_without_a_click_and_a_braid():
    async with _Ads() as ctx:
        leads = _click(gclid=None, orderId="o-lead")
        braid = _click(gclid=None, gbraid="gb-1", orderId="o-braid", userIdentifiers=None)
        status, body = await ctx.upload(leads, braid)
        assert status == 200 and "partialFailureError" not in body
        assert [c["orderId"] for c in ctx.ads.accepted] == ["o-lead", "o-braid"]


async def test_google_ads_dedups_clicks_and_order_ids():
    async with _Ads() as ctx:
        assert (await ctx.upload(_click()))[0] == 200
        same_click = _click(orderId="o-new")
        same_order = _click(gclid="g-new")
        in_request = [_click(gclid="g-x", orderId="o-x"), _click(gclid="g-x", orderId="o-y"),
                      _click(gclid="g-z", orderId="o-x", conversionDateTime="2024-06-11 12:00:00+00:00")]
        other_action = _click(conversionAction=f"customers/{CID}/conversionActions/789")
        status, body = await ctx.upload(same_click, same_order, *in_request, other_action)
        assert _failed(body) == [(0, "CLICK_CONVERSION_ALREADY_EXISTS"), (1, "ORDER_ID_ALREADY_IN_USE"),
                                 (3, "DUPLICATE_CLICK_CONVERSION_IN_REQUEST"), (4, "DUPLICATE_ORDER_ID")]
        assert [c["orderId"] for c in ctx.ads.accepted] == ["o1", "o-x", "o1"]


async def test_google_ads_limit_of_2000_conversions():
    async with _Ads() as ctx:
        many = [_click(gclid=f"g-{i}", orderId=f"o-{i}") for i in range(2001)]
        status, body = await ctx.upload(*many)
        assert (status, _ads_code(body)) == (400, "TOO_MANY_CONVERSIONS_IN_REQUEST")
        status, body = await ctx.upload(*many[:2000])
        assert status == 200 and len(ctx.ads.accepted) == 2000


async def test_google_ads_parses_bodies_as_proto_json():
    async with _Ads() as ctx:
        snake = {"conversion_action": ACTION, "conversion_date_time": "2024-06-10 12:00:00+00:00",
                 "gclid": "g-snake", "conversion_value": "12.5", "currency_code": "EUR"}
        status, body = await ctx.upload(snake)
        assert status == 200 and "partialFailureError" not in body
        assert ctx.ads.accepted[0] == {"conversionAction": ACTION, "conversionDateTime": "2024-06-10 12:00:00+00:00",
                                       "gclid": "g-snake", "conversionValue": 12.5, "currencyCode": "EUR"}
        for bad in (_click(conversionActionId="456"), _click(consent={"adUserData": "YES"}),
                    _click(conversionValue="thirty")):
            status, body = await ctx.upload(bad)
            assert status == 400 and body["error"]["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
        status, body = await ctx.upload(_click(), partialFailure="yes")
        assert status == 400
        status, body = await _call("POST", f"{ctx.ads.url}/v22/customers/{CID}:uploadClickConversions",
                                   data=b"{", headers={**ctx.headers(), "Content-Type": "application/json"})
        assert status == 400 and len(ctx.ads.accepted) == 1


async def test_google_ads_validate_only_stores_nothing():
    async with _Ads() as ctx:
        status, body = await ctx.upload(_click(), _click(gclid="g-2", orderId="o-2", currencyCode="XX"),
                                        validateOnly=True)
        assert status == 200 and "results" not in body and _failed(body) == [(1, "UNSUPPORTED")]
        assert ctx.ads.accepted == []


CLICK_TIME = "2024-06-10 12:00:00+00:00"


def _enhancement(**change: Any) -> dict[str, Any]:
    adjustment = {"conversionAction": ACTION, "adjustmentType": "ENHANCEMENT", "orderId": "o1",
                  "userIdentifiers": [{"hashedEmail": _sha("ann@example.com")}], "userAgent": "Mozilla/5.0"}
    adjustment.update(change)
    return {k: v for k, v in adjustment.items() if v is not None}


async def test_google_ads_conversion_adjustments():
    async with _Ads() as ctx:
        adjust = {"method": "uploadConversionAdjustments", "key": "conversionAdjustments"}
        status, body = await ctx.upload(_enhancement(), **adjust)
        assert status == 200 and body["results"] == [{"orderId": "o1", "conversionAction": ACTION,
                                                      "adjustmentType": "ENHANCEMENT"}]
        retraction = _enhancement(adjustmentType="RETRACTION", orderId="o9", userIdentifiers=None,
                                  adjustmentDateTime="2024-06-11 09:00:00-05:00")
        batch = [_enhancement(), _enhancement(orderId=None), _enhancement(orderId="o2"), _enhancement(orderId="o2"),
                 _enhancement(orderId="o3", userIdentifiers=[{"hashedEmail": "ann@example.com"}]),
                 _enhancement(orderId="o4", gclidDateTimePair={"gclid": "g", "conversionDateTime": CLICK_TIME}),
                 retraction, _enhancement(adjustmentType="RETRACTION", orderId="o8")]
        status, body = await ctx.upload(*batch, **adjust)
        assert status == 200
        paths = [e["location"]["fieldPathElements"][0]["fieldName"]
                 for e in body["partialFailureError"]["details"][0]["errors"]]
        assert set(paths) == {"conversion_adjustments"}
        assert _failed(body) == [(0, "CONVERSION_ALREADY_ENHANCED"), (1, "REQUIRED"),
                                 (3, "DUPLICATE_ENHANCEMENT_IN_REQUEST"), (4, "INVALID_USER_IDENTIFIER"),
                                 (5, "GCLID_DATE_TIME_PAIR_AND_ORDER_ID_BOTH_SET"), (7, "REQUIRED")]
        assert [a["orderId"] for a in ctx.ads.adjustments] == ["o1", "o2", "o9"]
        assert ctx.ads.accepted == []


async def test_google_ads_adjustment_rules_fail_by_order_id():
    async with _Ads() as ctx:
        ctx.ads.add_rule("CONVERSION_NOT_FOUND", lambda a: a.get("orderId") == "o-missing", kind="adjustment")
        status, body = await ctx.upload(_enhancement(orderId="o-missing"), _enhancement(orderId="o-ok"),
                                        method="uploadConversionAdjustments", key="conversionAdjustments")
        assert _failed(body) == [(0, "CONVERSION_NOT_FOUND")]
        assert body["partialFailureError"]["details"][0]["errors"][0]["errorCode"] == {
            "conversionAdjustmentUploadError": "CONVERSION_NOT_FOUND"}


async def test_google_ads_scripted_failures_use_google_error_shapes():
    async with _Ads() as ctx:
        ctx.ads.fail_next(429)
        status, body = await ctx.upload(_click())
        assert (status, body["error"]["status"], _ads_code(body)) == (429, "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED")
        ctx.ads.fail_next(503)
        status, body = await ctx.upload(_click())
        assert (status, body["error"]["status"]) == (503, "UNAVAILABLE")
        assert ctx.ads.accepted == []
        assert (await ctx.upload(_click()))[0] == 200 and len(ctx.ads.accepted) == 1


# Customer Match through offline user data jobs

LIST_ID = "4242"


async def _job(ctx: _Ads, list_id: str = LIST_ID) -> tuple[int, Any]:
    body = {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {
        "userList": f"customers/{CID}/userLists/{list_id}",
        "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}}}}
    return await _call("POST", f"{ctx.ads.url}/v22/customers/{CID}/offlineUserDataJobs:create",
                       json=body, headers=ctx.headers())


async def _job_call(ctx: _Ads, resource: str, verb: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    return await _call("POST", f"{ctx.ads.url}/v22/{resource}:{verb}", json=body, headers=ctx.headers())


def _member(email: str) -> dict[str, Any]:
    return {"userIdentifiers": [{"hashedEmail": _sha(email)}]}


async def test_google_ads_customer_match_adds_and_removes_on_run():
    async with _Ads(user_list_ids=[LIST_ID]) as ctx:
        status, created = await _job(ctx)
        assert status == 200
        resource = created["resourceName"]
        assert resource.startswith(f"customers/{CID}/offlineUserDataJobs/")
        adds = {"operations": [{"create": _member("a@example.com")}, {"create": _member("b@example.com")},
                               {"create": {"userIdentifiers": [{"hashedEmail": "c@example.com"}]}},
                               {"create": {"userIdentifiers": [{"addressInfo": {
                                   "hashedFirstName": _sha("ann"), "hashedLastName": _sha("lee"),
                                   "countryCode": "US", "postalCode": "94105"}}]}}],
                "enablePartialFailure": True}
        status, body = await _job_call(ctx, resource, "addOperations", adds)
        assert status == 200 and _failed(body) == [(2, "INVALID_SHA256_FORMAT")]
        status, body = await _job_call(ctx, resource, "addOperations", {
            "operations": [{"remove": _member("a@example.com")}], "enable_warnings": True})
        assert (status, body) == (200, {})
        assert ctx.ads.members == {}  # nothing changes before the job runs
        status, body = await _job_call(ctx, resource, "run")
        assert status == 200 and body["name"].startswith(f"customers/{CID}/operations/")
        emails = {value for kind, value in ctx.ads.members[LIST_ID] if kind == "hashedEmail"}
        assert emails == {_sha("b@example.com")}
        assert any(kind == "addressInfo" for kind, _ in ctx.ads.members[LIST_ID])
        status, body = await _job_call(ctx, resource, "addOperations", {"operations": [{"create": _member("d@x.io")}]})
        assert (status, _ads_code(body)) == (400, "JOB_ALREADY_STARTED")


async def test_google_ads_customer_match_refusals():
    async with _Ads(user_list_ids=[LIST_ID]) as ctx:
        status, body = await _job(ctx, "777")
        assert (status, _ads_code(body)) == (400, "INVALID_USER_LIST_ID")
        _, created = await _job(ctx)
        resource = created["resourceName"]
        unhashed = {"operations": [{"create": _member("a@example.com")},
                                   {"create": {"userIdentifiers": [{"hashedPhoneNumber": "+14155550100"}]}}]}
        status, body = await _job_call(ctx, resource, "addOperations", unhashed)
        assert (status, _ads_code(body)) == (400, "INVALID_SHA256_FORMAT")
        error = body["error"]["details"][0]["errors"][0]
        assert error["location"]["fieldPathElements"][0] == {"fieldName": "operations", "index": 1}
        empty = {"operations": [{"create": {"userIdentifiers": []}}]}
        status, body = await _job_call(ctx, resource, "addOperations", empty)
        assert (status, _ads_code(body)) == (400, "MISSING_USER_IDENTIFIER")
        both = {"operations": [{"create": _member("a@example.com"), "remove": _member("a@example.com")}]}
        assert (await _job_call(ctx, resource, "addOperations", both))[0] == 400
        assert (await _job_call(ctx, resource, "run"))[0] == 200
        assert ctx.ads.members[LIST_ID] == set()
        ctx.oauth.expire_all()
        status, _ = await _job(ctx)
        assert status == 401


async def test_google_ads_user_lists_mutate_creates_a_usable_list():
    async with _Ads(user_list_ids=[]) as ctx:
        create = {"operations": [{"create": {"name": "Audience A", "membershipLifeSpan": "540",
                                             "crmBasedUserList": {"uploadKeyType": "CONTACT_INFO"}}}]}
        url = f"{ctx.ads.url}/v22/customers/{CID}/userLists:mutate"
        status, body = await _call("POST", url, json=create, headers=ctx.headers())
        assert status == 200
        list_id = body["results"][0]["resourceName"].rsplit("/", 1)[1]
        status, body = await _call("POST", url, json=create, headers=ctx.headers())
        assert (status, _ads_code(body)) == (400, "NAME_ALREADY_USED")
        assert (await _job(ctx, list_id))[0] == 200


# ---------------------------------------------------------------- Meta Conversions API and Custom Audiences

FB_TOKEN = "EAAtest-system-user-token"
PIXEL = "1122334455"
FB_NOW = 1_718_000_000.0


def _capi_event(**change: Any) -> dict[str, Any]:
    """The fact sheet's example event (§6)."""
    event = {
        "event_name": "Purchase", "event_time": 1718000000, "event_id": "msg-1", "action_source": "website",
        "event_source_url": "https://shop.example/checkout",
        "user_data": {"em": [_sha("ann@example.com")], "ph": [_sha("14155550100")], "external_id": [_sha("u1")],
                      "client_ip_address": "1.2.3.4", "client_user_agent": "Mozilla/5.0",
                      "fbc": "fb.1.1718000000000.AbCdEf", "fbp": "fb.1.1717000000000.123456789"},
        "custom_data": {"currency": "USD", "value": 30, "content_ids": ["sku1"],
                        "contents": [{"id": "sku1", "quantity": 2, "item_price": 15}], "num_items": 2},
    }
    event.update(change)
    return event


def _user_data(**change: Any) -> dict[str, Any]:
    user_data = dict(_capi_event()["user_data"])
    user_data.update(change)
    return {k: v for k, v in user_data.items() if v is not None}


class _Meta:
    def __init__(self, **options: Any) -> None:
        self.now = [FB_NOW]
        self.double = FacebookDouble(FB_TOKEN, clock=lambda: self.now[0], **options)

    async def __aenter__(self) -> _Meta:
        await self.double.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.double.close()

    async def send(self, *events: dict[str, Any], token: str | None = FB_TOKEN, pixel: str = PIXEL,
                   **body: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await _call("POST", f"{self.double.url}/v24.0/{pixel}/events", json={"data": list(events), **body},
                           headers=headers)


async def test_meta_accepts_the_documented_event_with_a_bearer_token():
    async with _Meta() as meta:
        status, body = await meta.send(_capi_event())
        assert status == 200
        assert body["events_received"] == 1 and body["messages"] == [] and body["fbtrace_id"]
        (kept,) = meta.double.accepted
        assert (kept.pixel_id, kept.event, kept.test_event_code) == (PIXEL, _capi_event(), None)


async def test_meta_accepts_the_token_in_the_query_and_a_form_body():
    async with _Meta() as meta:
        url = f"{meta.double.url}/v25.0/{PIXEL}/events?access_token={FB_TOKEN}"
        status, _ = await _call("POST", url, json={"data": [_capi_event(event_id="q-1")], "test_event_code": "TEST1"})
        assert status == 200
        form = {"data": json.dumps([_capi_event(event_id="f-1")]), "access_token": FB_TOKEN}
        status, _ = await _call("POST", f"{meta.double.url}/v25.0/{PIXEL}/events", data=form)
        assert status == 200
        assert [(e.event["event_id"], e.test_event_code) for e in meta.double.accepted] == [("q-1", "TEST1"),
                                                                                             ("f-1", None)]


async def test_meta_refuses_missing_and_wrong_tokens_with_graph_errors():
    async with _Meta() as meta:
        status, body = await meta.send(_capi_event(), token=None)
        assert (status, body["error"]["code"], body["error"]["type"]) == (400, 104, "OAuthException")
        status, body = await meta.send(_capi_event(), token="EAAwrong")
        assert (status, body["error"]["code"], body["error"]["type"]) == (400, 190, "OAuthException")
        assert body["error"]["fbtrace_id"]
        assert meta.double.accepted == []
    async with _Meta(auth_error_status=401) as meta:
        status, body = await meta.send(_capi_event(), token="EAAwrong")
        assert (status, body["error"]["code"]) == (401, 190)


async def test_meta_refuses_an_unknown_pixel():
    async with _Meta(pixel_ids=[PIXEL]) as meta:
        status, body = await meta.send(_capi_event(), pixel="999")
        assert (status, body["error"]["code"], body["error"]["error_subcode"]) == (400, 100, 33)
        assert (await meta.send(_capi_event()))[0] == 200


DAY = 86400


@pytest.mark.parametrize(
    ("change", "subcode"),
    [
        ({"event_name": None}, 2804019),
        ({"event_name": ""}, 2804019),
        ({"event_time": None}, 2804019),
        ({"event_time": "yesterday"}, 2804019),
        ({"event_time": int(FB_NOW) * 1000}, 2804019),
        ({"event_time": int(FB_NOW) + 3600}, 2804019),
        ({"event_time": int(FB_NOW) - 8 * DAY}, 2804003),
        ({"action_source": None}, 2804019),
        ({"action_source": "web"}, 2804019),
        ({"event_source_url": None}, 2804019),
        ({"user_data": _user_data(client_user_agent=None)}, 2804019),
        ({"user_data": None}, 2804019),
        ({"user_data": {}, "action_source": "app"}, 2804019),
        ({"user_data": {"em": ""}, "action_source": "app"}, 2804019),
        ({"user_data": _user_data(em="ann@example.com")}, 2804019),
        ({"user_data": _user_data(em=[_sha("ann@example.com").upper()])}, 2804019),
        ({"user_data": _user_data(ph=["14155550100"])}, 2804019),
        ({"user_data": _user_data(fn="ann")}, 2804019),
        ({"user_data": _user_data(ct="san francisco")}, 2804019),
        ({"user_data": _user_data(country="us")}, 2804019),
        ({"user_data": _user_data(client_ip_address=_sha("1.2.3.4"))}, 2804019),
        ({"user_data": _user_data(client_ip_address="1.2.3")}, 2804019),
        ({"user_data": _user_data(fbp=_sha("fb.1.1717000000000.123456789"))}, 2804019),
        ({"user_data": _user_data(fbc="AbCdEf")}, 2804019),
    ],
)
async def test_meta_one_invalid_event_rejects_the_whole_batch(change, subcode):
    async with _Meta() as meta:
        bad = {k: v for k, v in _capi_event(event_id="bad", **change).items() if v is not None}
        status, body = await meta.send(_capi_event(), bad)
        assert status == 400
        error = body["error"]
        assert (error["code"], error["error_subcode"], error["type"]) == (100, subcode, "OAuthException")
        assert "index 1" in error["error_user_msg"]
        assert meta.double.accepted == []


async def test_meta_event_time_forms_and_the_physical_store_window():
    async with _Meta() as meta:
        events = [
            _capi_event(event_id="iso", event_time="2024-06-10T06:00:00Z"),
            _capi_event(event_id="digits", event_time=str(int(FB_NOW) - 6 * DAY)),
            _capi_event(event_id="store", action_source="physical_store", event_time=int(FB_NOW) - 30 * DAY),
            _capi_event(event_id="ahead", event_time=int(FB_NOW) + 30),
        ]
        assert (await meta.send(*events))[0] == 200
        assert len(meta.double.accepted) == 4
        status, body = await meta.send(_capi_event(action_source="physical_store", event_time=int(FB_NOW) - 63 * DAY))
        assert (status, body["error"]["error_subcode"]) == (400, 2804003)


async def test_meta_limit_of_1000_events():
    async with _Meta() as meta:
        events = [_capi_event(event_id=f"e-{i}") for i in range(1001)]
        status, body = await meta.send(*events)
        assert (status, body["error"]["code"]) == (400, 100)
        status, body = await meta.send(*events[:1000])
        assert status == 200 and body["events_received"] == 1000 and len(meta.double.accepted) == 1000
        status, _ = await meta.send()
        assert status == 400


async def test_meta_dedups_event_name_and_event_id_within_48_hours():
    async with _Meta() as meta:
        assert (await meta.send(_capi_event()))[1]["events_received"] == 1
        status, body = await meta.send(_capi_event(), _capi_event(event_name="AddToCart"))
        assert status == 200 and body["events_received"] == 2
        assert [e.event["event_name"] for e in meta.double.accepted] == ["Purchase", "AddToCart"]
        assert len(meta.double.duplicates) == 1
        meta.now[0] += 49 * 3600
        assert (await meta.send(_capi_event(event_time=int(meta.now[0]))))[0] == 200
        assert [e.event["event_name"] for e in meta.double.events("Purchase")] == ["Purchase", "Purchase"]
        no_id = {k: v for k, v in _capi_event(event_time=int(meta.now[0])).items() if k != "event_id"}
        await meta.send(no_id, no_id)
        assert len(meta.double.events("Purchase")) == 4


async def test_meta_external_id_hashing_is_only_recommended():
    event = _capi_event(user_data=_user_data(external_id="u1"))
    async with _Meta() as meta:
        assert (await meta.send(event))[0] == 200
    async with _Meta(require_hashed_external_id=True) as meta:
        status, body = await meta.send(event)
        assert status == 400 and "external_id" in body["error"]["error_user_msg"]


@pytest.mark.parametrize(("status", "code"), [(429, 4), (500, 1), (503, 2)])
async def test_meta_scripted_failures_use_graph_error_codes(status, code):
    async with _Meta() as meta:
        meta.double.fail_next(status)
        answered, body = await meta.send(_capi_event())
        assert (answered, body["error"]["code"], body["error"]["is_transient"]) == (status, code, True)
        assert meta.double.accepted == []
        assert (await meta.send(_capi_event()))[0] == 200


AUDIENCE = "23850000000000000"
# Segment's facebook-custom-audiences schema (every key, empty where unknown).
FB_SCHEMA = ["EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP",
             "MADID", "COUNTRY"]


def _row(extern_id: str = "", email: str = "", madid: str = "") -> list[str]:
    row = [""] * len(FB_SCHEMA)
    row[0], row[1], row[13] = extern_id, _sha(email) if email else "", madid
    return row


async def _audience(meta: _Meta, method: str, payload: Any, audience: str = AUDIENCE, **kwargs: Any) -> tuple[int, Any]:
    url = f"{meta.double.url}/v20.0/{audience}/users"
    headers = {"Authorization": f"Bearer {FB_TOKEN}"}
    return await _call(method, url, json={"payload": payload}, headers=headers, **kwargs)


async def test_meta_custom_audience_add_and_remove():
    async with _Meta(audience_ids=[AUDIENCE]) as meta:
        madid = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
        unhashed_phone = _row()
        unhashed_phone[2] = "14155550100"
        rows = [_row("u1", "a@example.com"), _row(email="b@example.com"), _row(madid=madid), unhashed_phone, _row()]
        status, body = await _audience(meta, "POST", {"schema": FB_SCHEMA, "data": rows})
        assert status == 200
        assert (body["audience_id"], body["num_received"], body["num_invalid_entries"]) == (AUDIENCE, 5, 2)
        assert len(body["invalid_entry_samples"]) == 2 and body["session_id"]
        members = meta.double.audiences[AUDIENCE]
        assert ("EMAIL", _sha("b@example.com")) in members and ("PHONE", "14155550100") not in members
        assert ("MADID", madid) in members
        status, body = await _audience(meta, "DELETE", {"schema": "EMAIL_SHA256", "data": [_sha("b@example.com")]})
        assert status == 200 and body["num_invalid_entries"] == 0
        assert ("EMAIL", _sha("b@example.com")) not in meta.double.audiences[AUDIENCE]
        assert ("EMAIL", _sha("a@example.com")) in meta.double.audiences[AUDIENCE]
        assert [op for _, op, _ in meta.double.audience_operations] == ["add", "remove"]


async def test_meta_custom_audience_refusals():
    async with _Meta(audience_ids=[AUDIENCE]) as meta:
        good = {"schema": FB_SCHEMA, "data": [_row("u1", "a@example.com")]}
        status, body = await _audience(meta, "POST", good, audience="777")
        assert (status, body["error"]["error_subcode"]) == (400, 33)
        for bad in ({"schema": ["EMAIL", "SHOE_SIZE"], "data": [[_sha("a"), "9"]]},
                    {"schema": FB_SCHEMA, "data": [[_sha("a@example.com")]]},
                    {"schema": FB_SCHEMA, "data": []},
                    {"data": [_row("u1")]}):
            status, body = await _audience(meta, "POST", bad)
            assert (status, body["error"]["code"]) == (400, 100)
        url = f"{meta.double.url}/v20.0/{AUDIENCE}/users"
        status, body = await _call("POST", url, json={"payload": good}, headers={"Authorization": "Bearer nope"})
        assert (status, body["error"]["code"]) == (400, 190)
        assert meta.double.audiences == {}
        form = {"payload": json.dumps(good), "access_token": FB_TOKEN}
        status, body = await _call("POST", url, data=form)
        assert status == 200 and body["num_received"] == 1
