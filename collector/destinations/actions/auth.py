"""Credentials every vendor shares: header values, OAuth 2.0 access tokens, and keeping secrets out of text.

Access tokens come from a token source: ``OAuth2RefreshToken`` (RFC 6749 §6; Salesforce, HubSpot,
Google user credentials), ``OAuth2Password`` (RFC 6749 §4.3; Salesforce's username-password flow,
where the password is followed by the user's security token) and ``JWTBearer`` (RFC 7523; Google
service accounts and Salesforce's JWT bearer flow). All have one interface:

- ``await source.token(http)``: the cached access token, fetched when there is none or it is
  within 60 s of expiring. Concurrent callers share one request to the token endpoint.
- ``source.invalidate(token)``: the vendor refused ``token`` (e.g. HTTP 401); the next ``token()``
  fetches a new one. Only the current token is dropped, so several lanes reporting the same
  refused token cause one fetch, and a lane reporting an older token causes none.
- ``source.info``: the non-secret fields of the last token answer (Salesforce's ``instance_url``).
- ``source.sensitive_values()``: every secret it holds, for ``redact``.

A token endpoint's refusal raises ``AuthError``; ``retryable`` says whether asking again later can
help (network errors, timeouts, 408, 429, 5xx) or the credentials must be fixed first (400/401
``invalid_grant``, ``invalid_client`` ...). No message or repr ever contains a secret.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence
from urllib.parse import quote_plus, urlsplit

import aiohttp

from collector.destinations.base import parse_retry_after

REDACTED = "***"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SALESFORCE_LOGIN_URL = "https://login.salesforce.com"

ClientAuth = Literal["body", "basic"]
Clock = Callable[[], float]

# Fields of a token answer that are credentials (Salesforce's "signature" is an HMAC keyed with the
# client secret); the rest is kept in ``info``.
_SECRET_FIELDS = frozenset({"access_token", "refresh_token", "id_token", "signature"})
# Salesforce answers a refresh that overlaps another with 400 invalid_grant and this description;
# the first refresh succeeds, so asking again shortly does too.
_ALREADY_PROCESSING = "already being processed"
_MAX_DETAIL = 200


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` header value for HTTP Basic (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def bearer(token: str) -> str:
    """The ``Authorization`` header value for a bearer token (RFC 6750)."""
    return "Bearer " + token


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every non-empty secret replaced by ``***`` (for logs and
    dead-letter reasons). Longer secrets go first, so one that contains another is hidden whole."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class AuthError(Exception):
    """A token could not be had. ``retryable``: asking again later may work; otherwise the
    operator must fix the credentials. ``status`` and ``error`` are the token endpoint's HTTP
    status and OAuth error code when it answered."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.error = error
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"AuthError({str(self)!r}, retryable={self.retryable})"


# ------------------------------------------------------------------------------ token sources


class _TokenSource:
    """Caches one access token; fetches a new one when needed, one fetch at a time."""

    def __init__(
        self,
        token_url: str,
        *,
        timeout: float,
        clock: Clock,
        refresh_margin: float,
        default_expires_in: float | None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.token_url = token_url
        self._where = f"token endpoint {urlsplit(token_url).hostname or token_url}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._margin = refresh_margin
        self._default_expires_in = default_expires_in
        self._access: str | None = None
        self._refresh_at = 0.0
        self._fetching: asyncio.Future[str] | None = None
        # Every secret this source has held, so that an echo of an old one is hidden too.
        self._secrets: set[str] = set()
        self.info: dict[str, Any] = {}

    async def token(self, http: aiohttp.ClientSession) -> str:
        access = self._access
        if access is not None and self._clock() < self._refresh_at:
            return access
        fetching = self._fetching
        # A finished fetch whose token was invalidated since must not answer again.
        if fetching is None or fetching.done():
            fetching = self._fetching = asyncio.ensure_future(self._fetch(http))
            fetching.add_done_callback(self._fetch_done)
        # Shielded: a caller that is cancelled leaves the fetch running for the others.
        return await asyncio.shield(fetching)

    def invalidate(self, token: str) -> None:
        if token == self._access:
            self._access = None
            self._refresh_at = 0.0

    def sensitive_values(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def _fetch_done(self, fetching: asyncio.Future[str]) -> None:
        if self._fetching is fetching:
            self._fetching = None
        if not fetching.cancelled():
            fetching.exception()  # its callers have it; this keeps asyncio from logging it again

    def _request(self) -> tuple[dict[str, str], dict[str, str]]:
        """The form and the headers of one token request."""
        raise NotImplementedError

    def _accept(self, answer: Mapping[str, Any]) -> None:
        """Called with a successful answer before its token is cached."""

    def _remember(self, *secrets: str) -> None:
        self._secrets.update(s for s in secrets if s)

    async def _fetch(self, http: aiohttp.ClientSession) -> str:
        started = self._clock()
        form, headers = self._request()
        try:
            async with http.post(
                self.token_url, data=form, headers=headers, timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status, response_headers = response.status, response.headers
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            detail = redact(str(exc), self._secrets)[:_MAX_DETAIL]
            # `from None`: a chained aiohttp error may carry the request's headers.
            raise AuthError(
                f"{self._where} could not be reached: {type(exc).__name__}"
                + (f": {detail}" if detail else ""),
                retryable=True,
            ) from None
        answer = self._read(status, response_headers, body)
        access = answer["access_token"]
        self._remember(access)
        self._accept(answer)
        expires_in = _seconds(answer.get("expires_in"), self._default_expires_in)
        if expires_in is None:
            self._refresh_at = math.inf  # until the vendor refuses it and invalidate() is called
        else:
            # Within the margin of expiry it is fetched again; a short-lived token keeps half its life.
            self._refresh_at = started + expires_in - min(self._margin, expires_in / 2)
        self._access = access
        self.info = {k: v for k, v in answer.items() if k not in _SECRET_FIELDS}
        return access

    def _read(self, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        answer = _json_object(body)
        if 200 <= status < 300:
            if answer is None or not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
                raise AuthError(
                    f"{self._where} answered HTTP {status} without an access_token",
                    retryable=False, status=status,
                )
            return answer
        error = answer.get("error") if answer is not None else None
        error = error if isinstance(error, str) else None
        if answer is not None:
            description = answer.get("error_description")
            detail = description if isinstance(description, str) else ""
        else:
            detail = body[:_MAX_DETAIL].decode("utf-8", "replace")
        detail = " ".join(redact(detail, self._secrets).split())[:_MAX_DETAIL]
        retryable = (
            status in (408, 429)
            or status >= 500
            or (error == "invalid_grant" and _ALREADY_PROCESSING in detail.lower())
        )
        if retryable:
            verdict = "could not issue a token"
        elif 300 <= status < 400:
            verdict = "redirected the token request (check the token URL)"
        else:
            verdict = "refused the credentials"
        message = f"{self._where} {verdict}: HTTP {status}"
        if error:
            message += f" {error}"
        if detail:
            message += f" ({detail})"
        retry_after = parse_retry_after(headers.get("Retry-After")) if retryable else None
        raise AuthError(message, retryable=retryable, status=status, error=error, retry_after=retry_after)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _seconds(value: Any, default: float | None) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return default
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    return default


def _client_credentials(
    form: dict[str, str], headers: dict[str, str], client_id: str, client_secret: str, mode: ClientAuth,
) -> None:
    """RFC 6749 §2.3.1: the client authenticates with Basic or with form fields, never both."""
    if mode == "basic":
        headers["Authorization"] = _basic_client_header(client_id, client_secret)
    else:
        form["client_id"] = client_id
        form["client_secret"] = client_secret


def _basic_client_header(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined and base64-encoded.
    return basic_auth(quote_plus(client_id), quote_plus(client_secret))


def _check_client(client_id: str, client_secret: str, client_auth: str) -> None:
    if client_auth not in ("body", "basic"):
        raise ValueError(f"client_auth must be 'body' or 'basic', not {client_auth!r}")
    if not client_id:
        raise ValueError("client_id is empty")
    if not client_secret:
        raise ValueError("client_secret is empty")


class OAuth2RefreshToken(_TokenSource):
    """Access tokens from a refresh token (RFC 6749 §6).

    A provider that rotates refresh tokens sends a new one with each answer; it is used from then
    on, and ``on_rotated(new_refresh_token)`` is called so that it can be stored: the one in the
    configuration may no longer work after a restart."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        scope: str | None = None,
        client_auth: ClientAuth = "body",
        on_rotated: Callable[[str], None] | None = None,
        timeout: float = 10.0,
        clock: Clock = time.monotonic,
        refresh_margin: float = 60.0,
        default_expires_in: float | None = None,
    ) -> None:
        super().__init__(
            token_url, timeout=timeout, clock=clock, refresh_margin=refresh_margin,
            default_expires_in=default_expires_in,
        )
        _check_client(client_id, client_secret, client_auth)
        if not refresh_token:
            raise ValueError("refresh_token is empty")
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._scope = scope
        self._client_auth = client_auth
        self._on_rotated = on_rotated
        self._remember(client_secret, refresh_token, _basic_client_header(client_id, client_secret))

    def __repr__(self) -> str:
        return f"OAuth2RefreshToken(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def _request(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
        if self._scope:
            form["scope"] = self._scope
        headers = {"Accept": "application/json"}
        _client_credentials(form, headers, self.client_id, self._client_secret, self._client_auth)
        return form, headers

    def _accept(self, answer: Mapping[str, Any]) -> None:
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._remember(rotated)
            self._refresh_token = rotated
            if self._on_rotated is not None:
                self._on_rotated(rotated)


class OAuth2Password(_TokenSource):
    """Access tokens from a user's name and password (RFC 6749 §4.3). For Salesforce, ``password``
    is the password followed by the user's security token."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        *,
        scope: str | None = None,
        client_auth: ClientAuth = "body",
        timeout: float = 10.0,
        clock: Clock = time.monotonic,
        refresh_margin: float = 60.0,
        default_expires_in: float | None = None,
    ) -> None:
        super().__init__(
            token_url, timeout=timeout, clock=clock, refresh_margin=refresh_margin,
            default_expires_in=default_expires_in,
        )
        _check_client(client_id, client_secret, client_auth)
        if not username or not password:
            raise ValueError("username and password must not be empty")
        self.client_id = client_id
        self.username = username
        self._client_secret = client_secret
        self._password = password
        self._scope = scope
        self._client_auth = client_auth
        self._remember(client_secret, password, _basic_client_header(client_id, client_secret))

    def __repr__(self) -> str:
        return (
            f"OAuth2Password(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"username={self.username!r})"
        )

    def _request(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {"grant_type": "password", "username": self.username, "password": self._password}
        if self._scope:
            form["scope"] = self._scope
        headers = {"Accept": "application/json"}
        _client_credentials(form, headers, self.client_id, self._client_secret, self._client_auth)
        return form, headers


class JWTBearer(_TokenSource):
    """Access tokens for a signed assertion (RFC 7523 §2.1), signed RS256 with PyJWT.

    Claims: ``iss``, ``aud``, ``iat``, ``exp`` (at most an hour later), ``scope`` and ``sub`` when
    given. A new assertion is signed for every fetch. Use ``from_service_account_file`` for Google
    and ``salesforce`` for Salesforce's JWT bearer flow."""

    def __init__(
        self,
        token_url: str,
        issuer: str,
        private_key: str,
        *,
        audience: str | None = None,
        subject: str | None = None,
        scopes: Sequence[str] = (),
        key_id: str | None = None,
        assertion_lifetime: int = 3600,
        timeout: float = 10.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        refresh_margin: float = 60.0,
        default_expires_in: float | None = None,
    ) -> None:
        super().__init__(
            token_url, timeout=timeout, clock=clock, refresh_margin=refresh_margin,
            default_expires_in=default_expires_in,
        )
        if not 0 < assertion_lifetime <= 3600:
            raise ValueError("assertion_lifetime must be between 1 and 3600 seconds")
        if not issuer:
            raise ValueError("issuer is empty")
        if isinstance(scopes, str):
            raise TypeError("scopes is a sequence of scope strings, not one string")
        self.issuer = issuer
        self.audience = audience or token_url
        self.subject = subject
        self._scope = " ".join(scopes)
        self._key_id = key_id
        self._lifetime = int(assertion_lifetime)
        self._wall_clock = wall_clock
        # The key whole, and line by line in case an answer echoes part of it.
        self._remember(private_key, *(line for line in private_key.splitlines() if len(line) >= 16))
        self._key = _load_rsa_private_key(private_key)

    def __repr__(self) -> str:
        return f"JWTBearer(token_url={self.token_url!r}, issuer={self.issuer!r}, subject={self.subject!r})"

    @classmethod
    def from_service_account_info(
        cls,
        info: Mapping[str, Any],
        scopes: Sequence[str],
        subject: str | None = None,
        token_url: str | None = None,
        **options: Any,
    ) -> JWTBearer:
        """A Google service account, from its parsed JSON key. ``subject``: the user to act for
        (domain-wide delegation)."""
        kind = info.get("type")
        if kind is not None and kind != "service_account":
            raise AuthError(f"the key file is of type {kind!r}, not 'service_account'", retryable=False)
        missing = [k for k in ("client_email", "private_key") if not isinstance(info.get(k), str) or not info[k]]
        if missing:
            raise AuthError(f"the service account key has no {' or '.join(missing)}", retryable=False)
        url = token_url or info.get("token_uri") or GOOGLE_TOKEN_URL
        return cls(
            url, info["client_email"], info["private_key"], audience=url, subject=subject,
            scopes=scopes, key_id=info.get("private_key_id") or None, **options,
        )

    @classmethod
    def from_service_account_file(
        cls,
        path: str | Path,
        scopes: Sequence[str],
        subject: str | None = None,
        token_url: str | None = None,
        **options: Any,
    ) -> JWTBearer:
        """A Google service account, from its JSON key file (``client_email``, ``private_key``,
        ``token_uri``)."""
        try:
            info = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise AuthError(f"cannot read the service account key {path}: {exc.strerror}", retryable=False) from None
        except ValueError:
            raise AuthError(f"the service account key {path} is not JSON", retryable=False) from None
        if not isinstance(info, dict):
            raise AuthError(f"the service account key {path} is not a JSON object", retryable=False)
        return cls.from_service_account_info(info, scopes, subject, token_url, **options)

    @classmethod
    def salesforce(
        cls,
        client_id: str,
        username: str,
        private_key: str,
        *,
        login_url: str = SALESFORCE_LOGIN_URL,
        **options: Any,
    ) -> JWTBearer:
        """Salesforce's OAuth 2.0 JWT bearer flow: ``iss`` is the connected app's consumer key,
        ``sub`` the user, ``aud`` the login URL (``https://test.salesforce.com`` for sandboxes).
        Salesforce wants ``exp`` within 3 minutes, and its answer has no ``expires_in``: the token
        is kept until ``invalidate`` is called on a 401."""
        login_url = login_url.rstrip("/")
        options.setdefault("assertion_lifetime", 180)
        return cls(
            f"{login_url}/services/oauth2/token", client_id, private_key, audience=login_url,
            subject=username, **options,
        )

    def assertion(self) -> str:
        """A freshly signed assertion."""
        import jwt

        now = int(self._wall_clock())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + self._lifetime}
        if self._scope:
            claims["scope"] = self._scope
        if self.subject:
            claims["sub"] = self.subject
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    def _request(self) -> tuple[dict[str, str], dict[str, str]]:
        assertion = self.assertion()
        self._remember(assertion)  # a signed assertion is a credential until it expires
        return {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}, {"Accept": "application/json"}


def _load_rsa_private_key(pem: str) -> Any:
    """The key, parsed once; PyJWT's crypto extra (``pyjwt[crypto]``) is needed from here on."""
    try:
        import jwt  # noqa: F401  (imported here so that token sources without JWT need no PyJWT)
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:
        raise AuthError('JWT signing needs PyJWT with its crypto extra: pip install "pyjwt[crypto]"',
                        retryable=False) from None
    try:
        key = load_pem_private_key(pem.encode("utf-8"), password=None)
    except Exception:  # whatever cryptography says, `from None` keeps its text (and the key) out
        raise AuthError("the private key could not be loaded: an unencrypted PEM key is expected",
                        retryable=False) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthError("the private key is not an RSA key (RS256 needs one)", retryable=False)
    return key
