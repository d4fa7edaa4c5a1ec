"""A generic OAuth 2 token endpoint (RFC 6749 §4.3, §6; RFC 7523 JWT bearer), as Google, Salesforce
and HubSpot run it: form-encoded ``POST`` to one path, JSON answers.

Grants:
- ``refresh_token``: client_id/client_secret (in the body or HTTP Basic) and a known refresh token.
- ``urn:ietf:params:oauth:grant-type:jwt-bearer``: an ``assertion`` JWT, RS256-verified when a public
  key is configured; its ``iss``/``aud``/``exp``/``iat`` are checked either way (Google: one hour at
  most between ``iat`` and ``exp``).
- ``password`` (Salesforce username-password flow): client credentials plus ``username`` and
  ``password`` (the password with the security token appended).

Answers: 200 ``{access_token, expires_in, token_type: "Bearer", ...extra_fields}``; 401
``invalid_client`` for an unknown client or wrong secret; 400 ``invalid_grant`` for an unknown,
revoked or expired refresh token, a bad assertion or bad user credentials; 400
``unsupported_grant_type`` / ``invalid_request`` otherwise.

Other doubles check bearer tokens with ``valid(token)`` or ``token_state(token)``; ``expire_all()``
makes every token issued so far stop working, as when a vendor's access tokens time out.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping
from urllib.parse import unquote

from tests.vendors.base import Answer, Recorded, VendorDouble

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TokenState = Literal["valid", "expired", "revoked", "unknown"]

# Google refuses assertions whose lifetime (exp - iat) exceeds one hour.
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300


@dataclass
class IssuedToken:
    """One access token the endpoint issued."""

    access_token: str
    grant_type: str
    client_id: str | None  # None for a JWT bearer grant (the assertion names its issuer)
    subject: str | None  # refresh token, username, or the assertion's ``iss``
    issued_at: float
    expires_at: float
    revoked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class OAuthDouble(VendorDouble):
    """The token endpoint. ``accepted`` holds an ``IssuedToken`` per token issued."""

    vendor = "oauth"

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        refresh_tokens: Iterable[str] = ("refresh-token",),
        users: Mapping[str, str] | None = None,
        jwt_public_key: bytes | str | None = None,
        jwt_issuers: Iterable[str] | None = None,
        jwt_audience: str | None = None,
        lifetime: int = 3600,
        path: str = "/token",
        extra_fields: Mapping[str, Any] | None = None,
        invalid_client_status: int = 401,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        clients: client_id -> client_secret that may use the refresh/password grants.
        refresh_tokens: refresh tokens that are valid (``revoke_refresh_token`` ends one).
        users: username -> password+security token, for the password grant.
        jwt_public_key: PEM public key that must verify an assertion's RS256 signature.
        jwt_issuers: the ``iss`` values allowed in an assertion (None: any non-empty).
        jwt_audience: the ``aud`` an assertion must carry (None: this endpoint's own URL).
        lifetime: seconds an access token is valid (``expires_in``).
        extra_fields: added to every token answer (e.g. Salesforce's ``instance_url``).
        """
        super().__init__()
        self.clients = dict(clients if clients is not None else {"client-id": "client-secret"})
        self.refresh_tokens = set(refresh_tokens)
        self.users = dict(users or {})
        self.jwt_issuers = set(jwt_issuers) if jwt_issuers is not None else None
        self.jwt_audience = jwt_audience
        self.lifetime = lifetime
        self.path = path
        self.extra_fields = dict(extra_fields or {})
        self.invalid_client_status = invalid_client_status
        self.clock = clock
        self._public_key = _load_public_key(jwt_public_key) if jwt_public_key else None
        self._tokens: dict[str, IssuedToken] = {}
        self._token_lock = threading.Lock()

    # -- what other doubles and tests use

    @property
    def token_url(self) -> str:
        return self.url + self.path

    @property
    def token_requests(self) -> int:
        """How many requests reached the token endpoint (answered or not)."""
        return sum(1 for call in list(self.requests) if call.path == self.path)

    def token_state(self, token: str) -> TokenState:
        with self._token_lock:
            issued = self._tokens.get(token)
        if issued is None:
            return "unknown"
        if issued.revoked:
            return "revoked"
        return "valid" if self.clock() < issued.expires_at else "expired"

    def valid(self, token: str) -> bool:
        return self.token_state(token) == "valid"

    def issue(self, *, client_id: str | None = None, grant_type: str = "test") -> str:
        """Issue an access token without a request (for tests that start with one)."""
        return self._issue(grant_type, client_id or next(iter(self.clients), None), None).access_token

    def expire_all(self) -> None:
        """Every token issued so far is expired from now on."""
        now = self.clock()
        with self._token_lock:
            for issued in self._tokens.values():
                issued.expires_at = min(issued.expires_at, now)

    def revoke_all(self) -> None:
        with self._token_lock:
            for issued in self._tokens.values():
                issued.revoked = True

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """The refresh token stops working (``invalid_grant``); tokens issued from it too."""
        self.refresh_tokens.discard(refresh_token)
        with self._token_lock:
            for issued in self._tokens.values():
                if issued.grant_type == "refresh_token" and issued.subject == refresh_token:
                    issued.revoked = True

    def reset(self) -> None:
        super().reset()
        with self._token_lock:
            self._tokens.clear()

    # -- serving

    def routes(self):
        return [("POST", self.path, self._token)]

    def failure_body(self, status: int, call: Recorded) -> Any:
        if status == 401:
            return _error("invalid_client", "Unauthorized")
        if status == 400:
            return _error("invalid_request", "Bad Request")
        if status == 429:
            return _error("rate_limit_exceeded", "Rate limit exceeded")
        return _error("temporarily_unavailable" if status == 503 else "server_error", "Backend Error")

    def _token(self, call: Recorded) -> Answer:
        if call.form is None:
            return Answer(400, _error("invalid_request", "Content-Type must be application/x-www-form-urlencoded"))
        form = call.form
        grant_type = form.get("grant_type", "")
        if not grant_type:
            return Answer(400, _error("invalid_request", "Missing required parameter: grant_type"))
        if grant_type == "refresh_token":
            return self._refresh_grant(call, form)
        if grant_type == "password":
            return self._password_grant(call, form)
        if grant_type == JWT_BEARER:
            return self._jwt_grant(form)
        return Answer(400, _error("unsupported_grant_type", f"Invalid grant_type: {grant_type}"))

    def _client(self, call: Recorded, form: Mapping[str, str]) -> tuple[str | None, Answer | None]:
        client_id, secret = _basic_credentials(call.headers.get("Authorization", ""))
        if client_id is None:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id:
            return None, Answer(400, _error("invalid_request", "Missing required parameter: client_id"))
        if self.clients.get(client_id) != secret:
            return None, Answer(
                self.invalid_client_status, _error("invalid_client", "The OAuth client was not found.")
            )
        return client_id, None

    def _refresh_grant(self, call: Recorded, form: Mapping[str, str]) -> Answer:
        client_id, refused = self._client(call, form)
        if refused is not None:
            return refused
        refresh_token = form.get("refresh_token", "")
        if not refresh_token:
            return Answer(400, _error("invalid_request", "Missing required parameter: refresh_token"))
        if refresh_token not in self.refresh_tokens:
            return Answer(400, _error("invalid_grant", "Token has been expired or revoked."))
        return self._granted(self._issue("refresh_token", client_id, refresh_token))

    def _password_grant(self, call: Recorded, form: Mapping[str, str]) -> Answer:
        client_id, refused = self._client(call, form)
        if refused is not None:
            return refused
        username, password = form.get("username", ""), form.get("password", "")
        if not username or not password:
            return Answer(400, _error("invalid_request", "Missing required parameter: username or password"))
        if username not in self.users or self.users[username] != password:
            return Answer(400, _error("invalid_grant", "authentication failure"))
        return self._granted(self._issue("password", client_id, username))

    def _jwt_grant(self, form: Mapping[str, str]) -> Answer:
        assertion = form.get("assertion", "")
        if not assertion:
            return Answer(400, _error("invalid_request", "Missing required parameter: assertion"))
        claims, problem = self._verified_claims(assertion)
        if problem:
            return Answer(400, _error("invalid_grant", problem))
        return self._granted(self._issue(JWT_BEARER, None, str(claims["iss"]), {"claims": claims}))

    def _verified_claims(self, assertion: str) -> tuple[dict[str, Any], str | None]:
        parts = assertion.split(".")
        if len(parts) != 3:
            return {}, "Invalid JWT: not three base64url parts."
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return {}, "Invalid JWT: cannot decode."
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return {}, "Invalid JWT: header and claims must be JSON objects."
        if header.get("alg") != "RS256":
            return {}, f"Invalid JWT: unsupported alg {header.get('alg')!r}."
        if self._public_key is not None and not _rs256_verifies(
            self._public_key, f"{parts[0]}.{parts[1]}".encode(), signature
        ):
            return claims, "Invalid JWT Signature."
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            return claims, "Invalid JWT: no iss claim."
        if self.jwt_issuers is not None and issuer not in self.jwt_issuers:
            return claims, "Invalid JWT: unknown issuer."
        audience = self.jwt_audience or self.token_url
        audiences = claims.get("aud")
        if audience not in (audiences if isinstance(audiences, list) else [audiences]):
            return claims, "Invalid JWT: aud does not name this endpoint."
        now = self.clock()
        expires, issued = claims.get("exp"), claims.get("iat", now)
        if not _is_number(expires) or not _is_number(issued):
            return claims, "Invalid JWT: exp and iat must be numbers."
        if expires <= now:
            return claims, "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
        if issued > now + CLOCK_SKEW or expires - issued > MAX_ASSERTION_LIFETIME:
            return claims, (
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim."
            )
        return claims, None

    def _issue(
        self, grant_type: str, client_id: str | None, subject: str | None, extra: dict[str, Any] | None = None
    ) -> IssuedToken:
        now = self.clock()
        issued = IssuedToken(
            access_token=f"at-{secrets.token_urlsafe(24)}",
            grant_type=grant_type,
            client_id=client_id,
            subject=subject,
            issued_at=now,
            expires_at=now + self.lifetime,
            extra=extra or {},
        )
        with self._token_lock:
            self._tokens[issued.access_token] = issued
        self.accepted.append(issued)
        return issued

    def _granted(self, issued: IssuedToken) -> Answer:
        body = {"access_token": issued.access_token, "expires_in": self.lifetime, "token_type": "Bearer"}
        body.update(self.extra_fields)
        return Answer(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})


def _error(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, _, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both are form-urlencoded before being joined.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load_public_key(pem: bytes | str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)


def _rs256_verifies(public_key: Any, signing_input: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
