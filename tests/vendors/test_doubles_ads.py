"""Self-tests of the analytics/ads vendor doubles: each refuses what its vendor refuses, with the
vendor's answer, and accepts the documented good examples (docs/vendors/analytics-ads.md)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.vendors.base import ThreadedDouble
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
    pytest.importorskip("cryptography")
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
