"""Which source a request comes from: its write key, given in any of the three ways clients use.

- `Authorization: Basic base64(writeKey + ":")`: analytics-node, the RudderStack SDKs, browser >= 1.84;
- `writeKey` in the JSON body: the browser, and analytics-python >= 2.3 (which sends no header);
- `Authorization: Bearer <token>` with `writeKey` in the body: the SDKs' OAuth mode. The collector
  has no OAuth server of its own, so the token is not checked; the body's write key decides.
"""

from __future__ import annotations

import base64

from collector.config.model import SourceConfig
from collector.ingest.errors import IngestError


def header_write_key(authorization: str | None) -> str | None:
    """The write key of a Basic Authorization header, or None when there is no Basic header."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text in the header
        raise IngestError(401, "invalid_authorization", "the Basic Authorization header is not valid base64") from None
    return decoded.partition(":")[0]


def header_source(authorization: str | None, sources_by_key: dict[str, tuple[str, SourceConfig]]) -> str | None:
    """The source of a Basic Authorization header, or None when the request has none. Checked
    before the body is read, so that a request with an unknown key costs no decompression."""
    key = header_write_key(authorization)
    return _source_of(key, sources_by_key) if key else None


def resolve_source(
    authorization: str | None, body_write_key: object, sources_by_key: dict[str, tuple[str, SourceConfig]]
) -> str:
    """The source name for this request, or an IngestError (401/403) saying why not."""
    key = header_write_key(authorization)
    if not key:
        if body_write_key is None or body_write_key == "":
            raise IngestError(
                401, "missing_write_key",
                "no write key: send it as Basic auth (writeKey as the user name) or as writeKey in the body",
            )
        if not isinstance(body_write_key, str):
            raise IngestError(401, "invalid_write_key", "writeKey must be a string")
        key = body_write_key
    return _source_of(key, sources_by_key)


def _source_of(key: str, sources_by_key: dict[str, tuple[str, SourceConfig]]) -> str:
    found = sources_by_key.get(key)
    if found is None:
        raise IngestError(401, "invalid_write_key", "the write key does not belong to any source")
    name, source = found
    if not source.enabled:
        raise IngestError(403, "source_disabled", f"the source {name!r} is disabled")
    return name
