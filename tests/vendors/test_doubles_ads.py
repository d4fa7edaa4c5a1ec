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
