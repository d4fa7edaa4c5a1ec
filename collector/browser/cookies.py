"""First-party identity that lasts: the collector sets (refreshes) the ``ajs_anonymous_id`` cookie.

Browsers such as Safari cap cookies written by JavaScript (``document.cookie``) to 7 days, so a
visitor who comes back after a week gets a new anonymous id. A cookie set by an HTTP response
from the site's own domain is not capped that way; the collector can set one on every successful
collection request, and the next page's analytics.js (ours or Segment's) reads the same
``ajs_anonymous_id`` cookie.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from aiohttp import web

from collector.browser.config import BrowserConfig

COOKIE_NAME = "ajs_anonymous_id"
MAX_ID_LENGTH = 200


def _host_of(url: str | None) -> tuple[str, str] | None:
    """(scheme, hostname) of an Origin / Referer value, else None."""
    if not url or url == "null":
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    return parts.scheme.lower(), host.lower().rstrip(".")


def _within(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _request_host(request: web.Request) -> str:
    host = (request.headers.get("X-Forwarded-Host") or request.headers.get("Host") or "").split(",")[0].strip()
    parsed = _host_of("http://" + host) if host else None
    return parsed[1] if parsed else ""


def refresh_anonymous_id_cookie(
    request: web.Request,
    response: web.StreamResponse,
    anonymous_id: str | None,
    config: BrowserConfig,
) -> None:
    """Set ``ajs_anonymous_id=<anonymous_id>`` on ``response`` when it can help, else do nothing.

    Call it after a successful collection request (the id of the request's last event that has an
    ``anonymousId``). It sets the cookie only when ``browser.cookie.enabled`` is true, the id is a
    non-empty string of at most 200 characters, and the request comes from a page whose cookies
    the collector can write:

    * ``browser.cookie.domain`` set (e.g. ``example.com``): the page (``Origin``, else
      ``Referer``) and the collector's host both lie within that domain, e.g. the site on
      ``www.example.com`` and the collector on ``data.example.com``. The cookie gets
      ``Domain=example.com``, so the site's analytics.js reads it.
    * no domain: the page and the collector share one host name (the collector behind the
      site's reverse proxy, e.g. ``https://www.example.com/collector``); a host-only cookie.

    It does not apply, and nothing is set, when the collector is on another site than the page
    (e.g. ``collector.example.net`` for ``www.example.com``): such a cookie would be a
    third-party cookie, which browsers block or do not send, and the page could not read it
    anyway; nor for requests without Origin/Referer (server-side SDKs).

    For the browser to store a cookie from a cross-origin (same-site) response, the request must
    be sent with credentials (our analytics.js does so when ``browser.cookie.enabled``) and the
    answer must echo the Origin with ``Access-Control-Allow-Credentials: true``. Segment's official
    bundle sends no credentials, so there only the same-host deployment works. Safari also caps
    server-set cookies to 7 days when the collector's IP address is unlike the site's (a CNAME to
    a third-party host): serve the collector from the site's own infrastructure.

    Attributes: ``Path=/``, ``Max-Age`` from ``browser.cookie.max_age`` (1 year),
    ``SameSite`` from ``browser.cookie.same_site`` (Lax), ``Secure`` per ``browser.cookie.secure``
    (unset: when the page is https); never HttpOnly, since analytics.js must read it.
    """
    cookie = config.cookie
    if not cookie.enabled or not isinstance(anonymous_id, str) or not anonymous_id:
        return
    if len(anonymous_id) > MAX_ID_LENGTH:
        return
    page = _host_of(request.headers.get("Origin")) or _host_of(request.headers.get("Referer"))
    if page is None:
        return
    page_scheme, page_host = page
    collector_host = _request_host(request)
    if not collector_host:
        return
    if cookie.domain:
        if not (_within(page_host, cookie.domain) and _within(collector_host, cookie.domain)):
            return
        domain: str | None = cookie.domain
    else:
        if page_host != collector_host:
            return
        domain = None
    secure = cookie.secure if cookie.secure is not None else page_scheme == "https"
    if cookie.same_site == "None":
        secure = True
    response.set_cookie(
        COOKIE_NAME,
        quote(anonymous_id, safe="-._~"),
        max_age=int(cookie.max_age),
        domain=domain,
        path="/",
        secure=secure,
        httponly=False,
        samesite=cookie.same_site,
    )
