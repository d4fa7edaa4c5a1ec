"""Token sources against a local token endpoint that behaves as RFC 6749 §5 and RFC 7523 say."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from collector.destinations.actions.auth import (
    JWT_BEARER_GRANT,
    AuthError,
    JWTBearer,
    OAuth2Password,
    OAuth2RefreshToken,
    basic_auth,
    bearer,
    redact,
)

CLIENT_ID = "client-4711"
# Characters that RFC 6749 §2.3.1 form-encodes before Basic: a server that skipped it would refuse.
CLIENT_SECRET = "s3cr3t:client+secret/=="
REFRESH_TOKEN = "rt-initial-5f2b9c0e"
USERNAME = "ops@example.com"
PASSWORD = "pa55word-and-security-token"


def pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class TokenEndpoint:
    """An authorization server's token endpoint: form-encoded requests, client authentication by
    Basic or by body (never both), refresh_token, password and jwt-bearer grants; errors as §5.2."""

    refresh_tokens: set[str] = field(default_factory=lambda: {REFRESH_TOKEN})
    rotate: bool = False
    expires_in: Any = 3600
    public_keys: list[Any] = field(default_factory=list)
    audience: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    # When set, answers wait for it: lets a test hold a fetch open.
    gate: asyncio.Event | None = None
    # When set, the next answers are these (status, headers, body) instead.
    canned: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    issued: int = 0
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.handle)
        app.router.add_post("/services/oauth2/token", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self.error(400, "invalid_request", "form-encoded body expected")
        form = dict(await request.post())
        self.requests.append({"form": form, "headers": dict(request.headers)})
        if self.gate is not None:
            await self.gate.wait()
        if self.canned:
            status, headers, body = self.canned.pop(0)
            return web.Response(status=status, headers=headers, text=body)
        grant = form.get("grant_type")
        if grant == JWT_BEARER_GRANT:
            if not self.assertion_verifies(form.get("assertion", "")):
                return self.error(400, "invalid_grant", "Invalid JWT Signature.")
            return self.issue()
        refusal = self.authenticate_client(request, form)
        if refusal is not None:
            return refusal
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return self.error(400, "invalid_grant", "expired access/refresh token")
            return self.issue(rotate_from=form["refresh_token"])
        if grant == "password":
            if (form.get("username"), form.get("password")) != (USERNAME, PASSWORD):
                return self.error(400, "invalid_grant", "authentication failure")
            return self.issue()
        return self.error(400, "unsupported_grant_type", "")

    def authenticate_client(self, request: web.Request, form: dict[str, str]) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        in_body = "client_secret" in form or "client_id" in form
        if header.startswith("Basic "):
            if in_body:
                return self.error(400, "invalid_request", "more than one client authentication method")
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            client = (unquote_plus(user), unquote_plus(password))
        else:
            client = (form.get("client_id"), form.get("client_secret"))
        if client != (CLIENT_ID, CLIENT_SECRET):
            response = self.error(401, "invalid_client", "client authentication failed")
            if header:
                response.headers["WWW-Authenticate"] = 'Basic realm="token"'
            return response
        return None

    def assertion_verifies(self, assertion: str) -> bool:
        for key in self.public_keys:
            try:
                jwt.decode(assertion, key, algorithms=["RS256"], audience=self.audience,
                           options={"verify_iat": False, "verify_exp": False})
                return True
            except jwt.InvalidTokenError:
                continue
        return False

    def issue(self, rotate_from: str | None = None) -> web.Response:
        self.issued += 1
        answer: dict[str, Any] = {"access_token": f"at-{self.issued}-9d8e7f", "token_type": "Bearer",
                                  "instance_url": "https://example.my.salesforce.com"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        if self.rotate and rotate_from is not None:
            new = f"rt-rotated-{self.issued}"
            self.refresh_tokens.discard(rotate_from)
            self.refresh_tokens.add(new)
            answer["refresh_token"] = new
        return web.json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @staticmethod
    def error(status: int, error: str, description: str) -> web.Response:
        body = {"error": error}
        if description:
            body["error_description"] = description
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


@pytest.fixture
async def endpoint():
    token_endpoint = TokenEndpoint()
    server = TestServer(token_endpoint.app())
    await server.start_server()
    token_endpoint.url = str(server.make_url("/token"))
    yield token_endpoint
    if token_endpoint.gate is not None:
        token_endpoint.gate.set()
    await server.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as client:
        yield client


def refresh_source(endpoint: TokenEndpoint, **options: Any) -> OAuth2RefreshToken:
    return OAuth2RefreshToken(endpoint.url, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, **options)


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# ------------------------------------------------------------------------------ header values


def test_basic_auth_is_rfc_7617():
    assert basic_auth("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="  # RFC 7617 §2


def test_bearer():
    assert bearer("at-1") == "Bearer at-1"


def test_redact_hides_every_occurrence_longest_first():
    text = "token abcdef and abc, again abcdef"
    assert redact(text, ["abc", "abcdef"]) == "token *** and ***, again ***"
    assert redact(text, ["", None]) == text  # an empty secret must not be "found" everywhere


# ------------------------------------------------------------------------------ refresh token grant


async def test_the_token_is_fetched_once_and_then_cached(endpoint, http):
    source = refresh_source(endpoint)
    first = await source.token(http)
    second = await source.token(http)
    assert first == second == "at-1-9d8e7f"
    assert len(endpoint.requests) == 1
    form = endpoint.requests[0]["form"]
    assert form == {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN,
                    "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert source.info == {"token_type": "Bearer", "expires_in": 3600,
                           "instance_url": "https://example.my.salesforce.com"}


async def test_basic_client_authentication_keeps_the_secret_out_of_the_body(endpoint, http):
    source = refresh_source(endpoint, client_auth="basic", scope="crm.objects.contacts.write")
    assert await source.token(http) == "at-1-9d8e7f"
    sent = endpoint.requests[0]
    assert sent["headers"]["Authorization"].startswith("Basic ")
    assert sent["form"] == {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN,
                            "scope": "crm.objects.contacts.write"}


async def test_refreshes_within_60_seconds_of_expiry(endpoint, http):
    clock = FakeClock(1000.0)
    source = refresh_source(endpoint, clock=clock)
    first = await source.token(http)
    clock.now = 1000.0 + 3600 - 61
    assert await source.token(http) == first
    assert len(endpoint.requests) == 1
    clock.now = 1000.0 + 3600 - 59
    second = await source.token(http)
    assert second != first
    assert len(endpoint.requests) == 2


async def test_a_short_lived_token_is_kept_for_half_its_life(endpoint, http):
    endpoint.expires_in = "40"  # some servers send it as a string
    clock = FakeClock(0.0)
    source = refresh_source(endpoint, clock=clock)
    first = await source.token(http)
    clock.now = 19.0
    assert await source.token(http) == first
    clock.now = 21.0
    assert await source.token(http) != first


async def test_without_expires_in_the_token_is_kept_until_invalidated(endpoint, http):
    endpoint.expires_in = None  # Salesforce's answers have none
    clock = FakeClock(0.0)
    source = refresh_source(endpoint, clock=clock)
    first = await source.token(http)
    clock.now = 10 * 86400.0
    assert await source.token(http) == first
    source.invalidate(first)
    assert await source.token(http) != first
    assert len(endpoint.requests) == 2


async def test_concurrent_callers_share_one_fetch(endpoint, http):
    endpoint.gate = asyncio.Event()
    source = refresh_source(endpoint)
    callers = [asyncio.create_task(source.token(http)) for _ in range(20)]
    while not endpoint.requests:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)  # room for any further (wrong) requests to arrive
    endpoint.gate.set()
    tokens = await asyncio.gather(*callers)
    assert set(tokens) == {"at-1-9d8e7f"}
    assert len(endpoint.requests) == 1


async def test_concurrent_callers_share_one_failure(endpoint, http):
    endpoint.gate = asyncio.Event()
    endpoint.refresh_tokens = set()
    source = refresh_source(endpoint)
    callers = [asyncio.create_task(source.token(http)) for _ in range(5)]
    while not endpoint.requests:
        await asyncio.sleep(0.001)
    endpoint.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, AuthError) and r.error == "invalid_grant" for r in results)
    assert len(endpoint.requests) == 1


async def test_a_cancelled_caller_does_not_cancel_the_fetch_for_the_others(endpoint, http):
    endpoint.gate = asyncio.Event()
    source = refresh_source(endpoint)
    impatient = asyncio.create_task(source.token(http))
    patient = asyncio.create_task(source.token(http))
    while not endpoint.requests:
        await asyncio.sleep(0.001)
    impatient.cancel()
    endpoint.gate.set()
    assert await patient == "at-1-9d8e7f"
    assert impatient.cancelled()


async def test_two_lanes_refused_with_the_same_token_cause_one_refresh(endpoint, http):
    source = refresh_source(endpoint)
    stale = await source.token(http)
    # Both lanes got a 401 with the same token and say so before either asks again.
    source.invalidate(stale)
    source.invalidate(stale)
    fresh = await asyncio.gather(source.token(http), source.token(http))
    assert fresh[0] == fresh[1] != stale
    # A third lane reports the stale token after the refresh: nothing to do.
    source.invalidate(stale)
    assert await source.token(http) == fresh[0]
    assert len(endpoint.requests) == 2


async def test_invalidating_a_token_that_is_not_current_changes_nothing(endpoint, http):
    source = refresh_source(endpoint)
    current = await source.token(http)
    source.invalidate("at-somebody-else")
    assert await source.token(http) == current
    assert len(endpoint.requests) == 1


async def test_a_rotated_refresh_token_is_followed(endpoint, http):
    endpoint.rotate = True
    rotated: list[str] = []
    source = refresh_source(endpoint, on_rotated=rotated.append)
    first = await source.token(http)
    source.invalidate(first)
    second = await source.token(http)  # the endpoint no longer accepts REFRESH_TOKEN
    assert second != first
    sent = [r["form"]["refresh_token"] for r in endpoint.requests]
    assert sent == [REFRESH_TOKEN, "rt-rotated-1"]
    assert rotated == ["rt-rotated-1", "rt-rotated-2"]
    assert "refresh_token" not in source.info
    assert_no_secret(repr(source), "rt-rotated-2", REFRESH_TOKEN, second)


# ------------------------------------------------------------------------------ refusals and errors


async def test_a_wrong_client_secret_is_not_retryable_and_not_told(endpoint, http):
    wrong = "wrong-secret-8c1d"
    for client_auth in ("body", "basic"):
        source = OAuth2RefreshToken(endpoint.url, CLIENT_ID, wrong, REFRESH_TOKEN, client_auth=client_auth)
        with pytest.raises(AuthError) as caught:
            await source.token(http)
        error = caught.value
        assert (error.retryable, error.status, error.error) == (False, 401, "invalid_client")
        assert_no_secret(str(error) + repr(error) + repr(source), wrong, REFRESH_TOKEN,
                         base64.b64encode(f"{CLIENT_ID}:{wrong}".encode()).decode())


async def test_a_wrong_refresh_token_is_not_retryable(endpoint, http):
    source = OAuth2RefreshToken(endpoint.url, CLIENT_ID, CLIENT_SECRET, "rt-revoked-33aa")
    with pytest.raises(AuthError) as caught:
        await source.token(http)
    error = caught.value
    assert (error.retryable, error.status, error.error) == (False, 400, "invalid_grant")
    assert_no_secret(str(error) + repr(error) + repr(source), "rt-revoked-33aa", CLIENT_SECRET)


async def test_a_secret_echoed_by_the_endpoint_is_redacted(endpoint, http):
    endpoint.canned.append(
        (400, {"Content-Type": "application/json"},
         json.dumps({"error": "invalid_grant",
                     "error_description": f"refresh token {REFRESH_TOKEN} of client secret {CLIENT_SECRET} revoked"})))
    source = refresh_source(endpoint)
    with pytest.raises(AuthError) as caught:
        await source.token(http)
    message = str(caught.value)
    assert "invalid_grant" in message and "***" in message
    assert_no_secret(message + repr(caught.value), REFRESH_TOKEN, CLIENT_SECRET)


async def test_salesforce_overlapping_refresh_is_retryable(endpoint, http):
    endpoint.canned.append(
        (400, {}, json.dumps({"error": "invalid_grant", "error_description": "token request is already being processed"})))
    with pytest.raises(AuthError) as caught:
        await refresh_source(endpoint).token(http)
    assert caught.value.retryable


@pytest.mark.parametrize(
    "status, headers, body, retry_after",
    [
        (429, {"Retry-After": "7"}, '{"error": "rate_limited"}', 7.0),
        (503, {"Retry-After": "30"}, "<html>unavailable</html>", 30.0),
        (500, {}, "", None),
        (408, {}, "", None),
    ],
)
async def test_throttling_and_server_errors_are_retryable(endpoint, http, status, headers, body, retry_after):
    endpoint.canned.append((status, headers, body))
    source = refresh_source(endpoint)
    with pytest.raises(AuthError) as caught:
        await source.token(http)
    assert caught.value.retryable
    assert caught.value.status == status
    assert caught.value.retry_after == retry_after
    # and the next call asks again
    assert await source.token(http) == "at-1-9d8e7f"


@pytest.mark.parametrize(
    "body",
    ['{"token_type": "Bearer", "expires_in": 3600}', '{"access_token": 42}', '{"access_token": ""}',
     "<html>login page</html>", "[]"],
)
async def test_an_answer_without_an_access_token_is_an_error(endpoint, http, body):
    endpoint.canned.append((200, {}, body))
    with pytest.raises(AuthError) as caught:
        await refresh_source(endpoint).token(http)
    assert not caught.value.retryable
    assert "without an access_token" in str(caught.value)


async def test_an_unreachable_endpoint_is_retryable(http):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = OAuth2RefreshToken(f"http://127.0.0.1:{port}/token", CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN)
    with pytest.raises(AuthError) as caught:
        await source.token(http)
    assert caught.value.retryable
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert_no_secret(str(caught.value), CLIENT_SECRET, REFRESH_TOKEN)


async def test_a_token_request_that_hangs_times_out_retryably(endpoint, http):
    endpoint.gate = asyncio.Event()  # never set while the request waits
    source = refresh_source(endpoint, timeout=0.2)
    with pytest.raises(AuthError) as caught:
        await source.token(http)
    assert caught.value.retryable
    assert "TimeoutError" in str(caught.value)


def test_settings_are_checked_without_echoing_them():
    with pytest.raises(ValueError, match="client_auth"):
        OAuth2RefreshToken("https://t.example/token", CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN,
                           client_auth="header")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh_token is empty"):
        OAuth2RefreshToken("https://t.example/token", CLIENT_ID, CLIENT_SECRET, "")


async def test_sensitive_values_cover_what_the_source_holds(endpoint, http):
    source = refresh_source(endpoint)
    access = await source.token(http)
    held = set(source.sensitive_values())
    assert {CLIENT_SECRET, REFRESH_TOKEN, access} <= held
    line = f"POST failed with Authorization: {bearer(access)} and refresh_token={REFRESH_TOKEN}"
    assert_no_secret(redact(line, held), access, REFRESH_TOKEN)


# ------------------------------------------------------------------------------ password grant


async def test_password_grant(endpoint, http):
    source = OAuth2Password(endpoint.url, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD)
    assert await source.token(http) == "at-1-9d8e7f"
    assert endpoint.requests[0]["form"] == {
        "grant_type": "password", "username": USERNAME, "password": PASSWORD,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    }
    wrong = OAuth2Password(endpoint.url, CLIENT_ID, CLIENT_SECRET, USERNAME, "not-the-password-77")
    with pytest.raises(AuthError) as caught:
        await wrong.token(http)
    assert (caught.value.retryable, caught.value.error) == (False, "invalid_grant")
    assert_no_secret(str(caught.value) + repr(wrong), "not-the-password-77", CLIENT_SECRET)


# ------------------------------------------------------------------------------ JWT bearer grant


def service_account_file(tmp_path, key, token_uri: str) -> str:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account",
        "project_id": "collector-test",
        "private_key_id": "kid-0123456789abcdef",
        "private_key": pem(key),
        "client_email": "collector@collector-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }))
    return str(path)


async def test_google_service_account_assertion_verifies_and_has_the_right_claims(endpoint, http, tmp_path, rsa_key):
    endpoint.public_keys = [rsa_key.public_key()]
    endpoint.audience = endpoint.url
    source = JWTBearer.from_service_account_file(
        service_account_file(tmp_path, rsa_key, endpoint.url),
        ["https://www.googleapis.com/auth/adwords", "https://www.googleapis.com/auth/userinfo.email"],
        subject="admin@example.com",
        wall_clock=lambda: 1_700_000_000.5,
    )
    assert await source.token(http) == "at-1-9d8e7f"
    form = endpoint.requests[0]["form"]
    assert set(form) == {"grant_type", "assertion"}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header = jwt.get_unverified_header(form["assertion"])
    assert header["alg"] == "RS256" and header["kid"] == "kid-0123456789abcdef"
    claims = jwt.decode(form["assertion"], rsa_key.public_key(), algorithms=["RS256"],
                        audience=endpoint.url, options={"verify_exp": False, "verify_iat": False})
    assert claims == {
        "iss": "collector@collector-test.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/adwords https://www.googleapis.com/auth/userinfo.email",
        "aud": endpoint.url,
        "sub": "admin@example.com",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600,
    }
    assert_no_secret(repr(source), pem(rsa_key), "at-1-9d8e7f")


async def test_a_token_url_given_overrides_the_key_files(endpoint, http, tmp_path, rsa_key):
    endpoint.public_keys = [rsa_key.public_key()]
    endpoint.audience = endpoint.url
    path = service_account_file(tmp_path, rsa_key, "https://oauth2.googleapis.com/token")
    source = JWTBearer.from_service_account_file(path, ["scope-a"], token_url=endpoint.url)
    assert await source.token(http) == "at-1-9d8e7f"


async def test_salesforce_jwt_bearer_flow(endpoint, http, rsa_key):
    login_url = endpoint.url.removesuffix("/token")
    endpoint.public_keys = [rsa_key.public_key()]
    endpoint.audience = login_url
    endpoint.expires_in = None
    source = JWTBearer.salesforce("3MVG9consumerKey", USERNAME, pem(rsa_key), login_url=login_url + "/",
                                  wall_clock=lambda: 1_700_000_000.0)
    assert source.token_url == login_url + "/services/oauth2/token"
    assert await source.token(http) == "at-1-9d8e7f"
    assert source.info["instance_url"] == "https://example.my.salesforce.com"
    claims = jwt.decode(endpoint.requests[0]["form"]["assertion"], rsa_key.public_key(),
                        algorithms=["RS256"], audience=login_url,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == "3MVG9consumerKey"
    assert claims["sub"] == USERNAME
    assert claims["aud"] == login_url
    assert 0 < claims["exp"] - claims["iat"] <= 180
    assert "scope" not in claims


async def test_a_key_the_endpoint_does_not_know_is_refused_without_showing_it(endpoint, http, rsa_key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    endpoint.public_keys = [rsa_key.public_key()]
    endpoint.audience = endpoint.url
    source = JWTBearer(endpoint.url, "issuer@example.com", pem(other), scopes=["s"])
    with pytest.raises(AuthError) as caught:
        await source.token(http)
    error = caught.value
    assert (error.retryable, error.error) == (False, "invalid_grant")
    assert_no_secret(str(error) + repr(error) + repr(source), pem(other),
                     endpoint.requests[0]["form"]["assertion"])


def test_an_unreadable_private_key_is_refused_without_showing_it(rsa_key):
    broken = pem(rsa_key).replace("A", "B", 40)
    with pytest.raises(AuthError) as caught:
        JWTBearer("https://t.example/token", "iss", broken)
    assert not caught.value.retryable
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert_no_secret(str(caught.value) + repr(caught.value), broken, broken.splitlines()[1])


def test_a_non_rsa_key_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AuthError, match="not an RSA key"):
        JWTBearer("https://t.example/token", "iss", pem(key))


@pytest.mark.parametrize(
    "content, message",
    [
        ({"type": "authorized_user", "client_email": "a@b", "private_key": "x"}, "authorized_user"),
        ({"type": "service_account", "client_email": "a@b"}, "no private_key"),
        ({"type": "service_account", "private_key": "x"}, "no client_email"),
    ],
)
def test_a_service_account_file_lacking_fields_is_refused(tmp_path, content, message):
    path = tmp_path / "key.json"
    path.write_text(json.dumps(content))
    with pytest.raises(AuthError, match=message):
        JWTBearer.from_service_account_file(path, ["s"])


def test_a_missing_or_broken_key_file_is_refused(tmp_path):
    with pytest.raises(AuthError, match="cannot read"):
        JWTBearer.from_service_account_file(tmp_path / "absent.json", ["s"])
    broken = tmp_path / "broken.json"
    broken.write_text('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE')
    with pytest.raises(AuthError, match="not JSON") as caught:
        JWTBearer.from_service_account_file(broken, ["s"])
    assert "MIIE" not in str(caught.value)


def test_assertion_lifetime_is_at_most_an_hour(rsa_key):
    with pytest.raises(ValueError):
        JWTBearer("https://t.example/token", "iss", pem(rsa_key), assertion_lifetime=3601)

