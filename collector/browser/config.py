"""The ``browser:`` section of the config: our analytics.js, the official bundle, first-party cookies.

Example::

    browser:
      consent_categories: [Analytics, Advertising]
      hold_until_consent: true
      official_bundle_dir: /opt/analytics-next/node_modules/@segment/analytics-next/dist/umd
      cookie: {enabled: true, domain: example.com}
      batch: {max_events: 10, max_wait: 1s}
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from collector.config.units import ByteSize, Duration

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]

# Chromium refuses a fetch(keepalive) whose body would take the page's in-flight keepalive bytes
# over 64 KiB, so batches that must survive the page going away stay below this.
KEEPALIVE_LIMIT = 64 * 1024


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CookieConfig(_Section):
    """The ``ajs_anonymous_id`` / ``ajs_user_id`` cookies.

    ``domain``, ``secure``, ``same_site`` and ``max_age`` apply both to the cookies our analytics.js
    writes and to the one the collector sets itself; ``enabled`` switches on the server-set cookie
    (see ``collector.browser.cookies.refresh_anonymous_id_cookie`` for when that helps).
    """

    # Set (refresh) ajs_anonymous_id from the collector on collection requests. Also makes our
    # analytics.js send its requests with credentials, which needs CORS to echo the Origin.
    enabled: bool = False
    # The site's registrable domain, e.g. "example.com" (no scheme, no port; a leading dot is
    # ignored). Unset: our analytics.js finds the top domain like Segment's; the server-set cookie
    # is then a host-only cookie of the collector's host.
    domain: str | None = None
    # Unset: Secure when the page (or the request to the collector) is https.
    secure: bool | None = None
    same_site: Literal["Lax", "Strict", "None"] = "Lax"
    max_age: Duration = Duration(365 * 86400)

    def __post_init__(self) -> None:
        if self.domain is not None:
            domain = self.domain.strip().lstrip(".").lower()
            if not domain or any(c in domain for c in ":/ ;,="):
                raise ValueError(f"cookie.domain must be a bare domain such as 'example.com', got {self.domain!r}")
            self.domain = domain
        if self.same_site == "None" and self.secure is False:
            raise ValueError("cookie.same_site None needs cookie.secure (browsers drop such cookies otherwise)")


class BatchConfig(_Section):
    """How our analytics.js batches events to ``/v1/b`` (the official bundle gets the same values
    as its ``deliveryStrategy`` from the settings endpoint)."""

    # Send as soon as this many events are waiting; also the most events in one request.
    max_events: PositiveInt = 10
    # Send at most this long after an event was made.
    max_wait: Duration = Duration(1)
    # The most bytes in one request. Up to 64 KiB every request can use fetch(keepalive) and so
    # survives the page being closed; above that, only smaller batches do.
    max_bytes: ByteSize = ByteSize(60 * 1000)

    def __post_init__(self) -> None:
        if not 1024 <= self.max_bytes <= 500 * 1024:
            raise ValueError("batch.max_bytes must be between 1KiB and 500KiB")


class QueueConfig(_Section):
    """The localStorage queue of events not yet accepted by the collector (offline, errors)."""

    # Above this many waiting events the oldest are dropped.
    max_events: PositiveInt = 1000
    # Events older than this are dropped instead of sent.
    max_age: Duration = Duration(7 * 86400)
    # Retries back off exponentially from 1 s up to this (a Retry-After answer is honoured up to 300 s).
    max_backoff: Duration = Duration(60)


class BrowserConfig(_Section):
    # Serve the browser routes (/analytics.js/..., /v1/projects/.../settings, /snippet.js).
    enabled: bool = True
    # A directory holding the official bundle (``standalone.js`` and its ``*.bundle.*.js`` chunks),
    # e.g. ``node_modules/@segment/analytics-next/dist/umd`` after ``npm install
    # @segment/analytics-next``; served at /analytics-next/v1/{writeKey}/analytics.min.js and
    # /analytics-next/bundles/{chunk}. Unset: those routes answer 404.
    official_bundle_dir: str | None = None
    # The site's consent categories (the settings' consentSettings.allCategories; our analytics.js
    # fills every category missing from a site's preferences with false).
    consent_categories: list[str] = []
    # Default for our analytics.js: keep events in the page until analytics.setConsent() is called
    # (a page can override it with analytics.load(key, {consent: {hold: ...}})).
    hold_until_consent: bool = False
    cookie: CookieConfig = msgspec.field(default_factory=CookieConfig)
    batch: BatchConfig = msgspec.field(default_factory=BatchConfig)
    queue: QueueConfig = msgspec.field(default_factory=QueueConfig)
    # Cache-Control max-age of the served scripts and settings (chunks with a hash in their name
    # are cached for a year).
    cache_max_age: Duration = Duration(300)
