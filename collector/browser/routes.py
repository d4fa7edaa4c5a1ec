"""Browser routes: our analytics.js, the official Segment bundle, its settings, and the snippet.

===========================================================  ===========================================
``GET /analytics.js/v1/{writeKey}/analytics.min.js``         our analytics.js, settings filled in (what
                                                             Segment's snippet loads once its host is
                                                             switched to the collector)
``GET /v1/projects/{writeKey}/settings``                     settings the official bundle accepts,
                                                             pointing it back at the collector
``GET /analytics-next/v1/{writeKey}/analytics.min.js``       the official ``standalone.js`` from
                                                             ``browser.official_bundle_dir`` (404 unset)
``GET /analytics-next/bundles/{chunk}``                      its lazy chunks, from the same directory
``GET /snippet.js?writeKey=...[&bundle=official]``           the ready-to-paste snippet
===========================================================  ===========================================

Unknown or disabled write keys answer 404. Scripts carry an ETag, ``Cache-Control`` from
``browser.cache_max_age`` and are gzipped when the client accepts it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from functools import lru_cache
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from collector import __version__
from collector.config.model import Config
from collector.ingest.client_ip import ClientAddress
from collector.browser.config import BrowserConfig

STATIC_DIR = Path(__file__).parent / "static"
OUR_LIBRARY = STATIC_DIR / "analytics.js"
OFFICIAL_PATH = "/analytics-next/v1/{writeKey}/analytics.min.js"
SNIPPET_VERSION = "5.2.1"

_CONFIG_SLOT = re.compile(r"/\*@config\*/.*?/\*@end\*/", re.S)
_CHUNK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.js(?:\.map)?$")
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_JS = "application/javascript"


# ---------------------------------------------------------------------------------------------
# Helpers the rest of the app may use too


def source_for_write_key(config: Config, write_key: str) -> str | None:
    """The name of the enabled source with this write key, else None."""
    for name, source in config.sources.items():
        if source.write_key == write_key and source.enabled:
            return name
    return None


@lru_cache(maxsize=16)
def _client_address(trusted_proxies: tuple[str, ...]) -> ClientAddress:
    return ClientAddress(list(trusted_proxies))


def public_origin(request: web.Request, config: Config) -> str:
    """The origin browsers reach the collector at, e.g. ``https://data.example.com`` (no trailing
    slash; may carry a path prefix when ``server.public_url`` has one).

    ``server.public_url`` when set; else the request's scheme and Host, with
    ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` believed only from ``server.trusted_proxies``.
    """
    server = config.server
    if server.public_url:
        return server.public_url.rstrip("/")
    scheme = request.scheme
    host = request.headers.get("Host") or ""
    if _client_address(tuple(server.trusted_proxies)).is_trusted(request.remote):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if forwarded_host:
            host = forwarded_host
    if not _HOST.match(host):
        host = server.listen
    return f"{scheme}://{host}"


def _api_host(origin: str) -> tuple[str, str]:
    """(protocol, apiHost) as Segment's settings spell them: ``("https", "data.example.com/v1")``."""
    parts = urlsplit(origin)
    return parts.scheme or "https", f"{parts.netloc}{parts.path.rstrip('/')}/v1"


# ---------------------------------------------------------------------------------------------
# What the routes serve, as pure functions


def library_config(write_key: str, origin: str, browser: BrowserConfig) -> dict:
    """The settings baked into our analytics.js (the ``CONFIG`` object at its top)."""
    return {
        "writeKey": write_key,
        "origin": origin,
        "version": __version__,
        "batch": {
            "size": browser.batch.max_events,
            "timeout": round(browser.batch.max_wait * 1000),
            "bytes": int(browser.batch.max_bytes),
        },
        "queue": {
            "max": browser.queue.max_events,
            "maxAge": round(browser.queue.max_age * 1000),
            "maxBackoff": round(browser.queue.max_backoff * 1000),
        },
        "consent": {"categories": list(browser.consent_categories), "hold": browser.hold_until_consent},
        "cookie": {
            "domain": browser.cookie.domain,
            "maxAge": round(browser.cookie.max_age),
            "sameSite": browser.cookie.same_site,
            "secure": browser.cookie.secure,
            "credentials": browser.cookie.enabled,
        },
    }


def _js_literal(value: Any) -> str:
    """JSON that is also safe to paste inside an HTML <script> element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _strip_for_serving(source: str) -> str:
    """The source minus comment-only lines and indentation (our 'build': it keeps the served file
    small without a toolchain). Safe because the source has no multi-line string or template."""
    source = re.sub(r"(?ms)^[ \t]*/\*(?:(?!\*/).)*\*/[ \t]*\n", "", source)
    source = re.sub(r"(?m)^[ \t]*//.*\n", "", source)
    source = re.sub(r"(?m)^[ \t]+", "", source)
    return source


_library_source: tuple[float, str] | None = None


def _library_template() -> str:
    global _library_source
    mtime = OUR_LIBRARY.stat().st_mtime
    if _library_source is None or _library_source[0] != mtime:
        text = _strip_for_serving(OUR_LIBRARY.read_text("utf-8"))
        text = "/*! analytics.js by the collector: readable source in collector/browser/static/analytics.js */\n" + text
        _library_source = (mtime, text)
    return _library_source[1]


def render_library(write_key: str, origin: str, browser: BrowserConfig) -> str:
    """Our analytics.js as served for this write key and collector origin."""
    literal = _js_literal(library_config(write_key, origin, browser))
    return _CONFIG_SLOT.sub(lambda _: literal, _library_template(), count=1)


def settings_json(write_key: str, origin: str, browser: BrowserConfig, config: Config | None = None) -> dict:
    """The ``/v1/projects/{writeKey}/settings`` document for the official bundle: Segment.io only,
    aimed at the collector; no remote plugins or middleware (nothing else is downloaded); metrics
    off and aimed at the collector anyway; consent categories from ``browser.consent_categories``."""
    protocol, api_host = _api_host(origin)
    destinations = config.destinations.values() if config is not None else ()
    unmapped = not destinations or any(not d.consent_categories for d in destinations)
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "deliveryStrategy": {
                    "strategy": "batching",
                    "config": {
                        "size": browser.batch.max_events,
                        "timeout": round(browser.batch.max_wait * 1000),
                    },
                },
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        "consentSettings": {
            "allCategories": list(browser.consent_categories),
            "hasUnmappedDestinations": unmapped,
        },
    }


_SNIPPET = """\
(function () {
  var key = "analytics", analytics = window[key] = window[key] || [];
  if (analytics.initialize) return;
  if (analytics.invoked) {
    if (window.console && console.error) console.error("Segment snippet included twice.");
    return;
  }
  analytics.invoked = true;
  analytics.methods = ["trackSubmit", "trackClick", "trackLink", "trackForm", "pageview", "identify",
    "reset", "group", "track", "ready", "alias", "debug", "page", "screen", "once", "off", "on",
    "addSourceMiddleware", "addIntegrationMiddleware", "setAnonymousId", "addDestinationMiddleware",
    "register"];
  analytics.factory = function (method) {
    return function () {
      if (window[key].initialized) return window[key][method].apply(window[key], arguments);
      var args = Array.prototype.slice.call(arguments);
      if (["track", "screen", "alias", "group", "page", "identify"].indexOf(method) > -1) {
        var canonical = document.querySelector("link[rel='canonical']");
        args.push({__t: "bpc", c: canonical && canonical.getAttribute("href") || void 0,
          p: location.pathname, u: location.href, s: location.search, t: document.title,
          r: document.referrer});
      }
      args.unshift(method);
      analytics.push(args);
      return analytics;
    };
  };
  for (var i = 0; i < analytics.methods.length; i++) {
    analytics[analytics.methods[i]] = analytics.factory(analytics.methods[i]);
  }
  analytics.load = function (writeKey, options) {
    var script = document.createElement("script");
    script.type = "text/javascript";
    script.async = true;
    script.setAttribute("data-global-segment-analytics-key", key);
    script.src = __ORIGIN__ + "__PATH__" + encodeURIComponent(writeKey) + "/analytics.min.js";
    var first = document.getElementsByTagName("script")[0];
    if (first) first.parentNode.insertBefore(script, first); else document.head.appendChild(script);
    analytics._loadOptions = options;
  };
  analytics._writeKey = __WRITE_KEY__;
  analytics._cdn = __ORIGIN__;
  analytics.SNIPPET_VERSION = "__VERSION__";
  analytics.load(__WRITE_KEY__);__PAGE__
})();
"""


def render_snippet(
    write_key: str, origin: str, *, official: bool = False, page: bool = True, script_tag: bool = False
) -> str:
    """The snippet to paste into a site, loading the library from ``origin`` (the collector's
    public origin, e.g. ``https://data.example.com``): our analytics.js, or with ``official=True``
    Segment's bundle from ``browser.official_bundle_dir``. ``page`` adds the first
    ``analytics.page()``; ``script_tag`` wraps it in ``<script>...</script>``."""
    origin = origin.rstrip("/")
    text = (
        _SNIPPET.replace("__ORIGIN__", _js_literal(origin))
        .replace("__WRITE_KEY__", _js_literal(write_key))
        .replace("__PATH__", "/analytics-next/v1/" if official else "/analytics.js/v1/")
        .replace("__VERSION__", SNIPPET_VERSION)
        .replace("__PAGE__", "\n  analytics.page();" if page else "")
    )
    return f"<script>\n{text}</script>\n" if script_tag else text


def _official_prelude(write_key: str, origin: str) -> str:
    """Put in front of the official standalone.js: tells it where its 'CDN' (settings, chunks) is,
    which it would otherwise only guess from an https script URL under /analytics.js/v1/."""
    return (
        "(function(){var s=document.currentScript,"
        "k=(s&&s.getAttribute('data-global-segment-analytics-key'))||'analytics',"
        "a=window[k]=window[k]||[];"
        f"if(!a._cdn)a._cdn={_js_literal(origin)};if(!a._writeKey)a._writeKey={_js_literal(write_key)};"
        "})();\n"
    )


# ---------------------------------------------------------------------------------------------
# The handlers


class _Cached(msgspec.Struct):
    body: bytes
    gzipped: bytes
    etag: str


class BrowserRoutes:
    def __init__(self, config: Config, browser: BrowserConfig) -> None:
        self.config = config
        self.browser = browser
        self.bundle_dir: Path | None = None
        if browser.official_bundle_dir:
            self.bundle_dir = Path(browser.official_bundle_dir).expanduser().resolve()
            if not (self.bundle_dir / "standalone.js").is_file():
                raise ValueError(
                    f"browser.official_bundle_dir: {browser.official_bundle_dir} has no standalone.js "
                    "(expected node_modules/@segment/analytics-next/dist/umd)"
                )
        self._cache: OrderedDict[tuple, _Cached] = OrderedDict()

    # -- plumbing

    def _write_key(self, request: web.Request) -> str:
        write_key = request.match_info["writeKey"]
        if source_for_write_key(self.config, write_key) is None:
            raise web.HTTPNotFound(text="unknown write key\n")
        return write_key

    def _cached(self, key: tuple, make) -> _Cached:
        entry = self._cache.get(key)
        if entry is None:
            body = make().encode("utf-8")
            entry = _Cached(
                body=body,
                gzipped=gzip.compress(body, 9, mtime=0),
                etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            )
            self._cache[key] = entry
            if len(self._cache) > 256:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return entry

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        allowed = self.config.server.cors.allowed_origins
        origin = request.headers.get("Origin")
        if "*" in allowed:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.add("Vary", "Origin")

    def _send(self, request: web.Request, entry: _Cached, content_type: str, max_age: float) -> web.Response:
        headers = {
            "Cache-Control": f"public, max-age={int(max_age)}",
            "ETag": entry.etag,
            "Vary": "Accept-Encoding",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        }
        if not self.config.server.public_url:
            headers["Vary"] += ", X-Forwarded-Proto, X-Forwarded-Host"
        if entry.etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            response = web.Response(status=304, headers=headers)
        elif "gzip" in request.headers.get("Accept-Encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
            response = web.Response(body=entry.gzipped, headers=headers, content_type=content_type, charset="utf-8")
        else:
            response = web.Response(body=entry.body, headers=headers, content_type=content_type, charset="utf-8")
        self._cors(request, response)
        return response

    # -- routes

    async def our_library(self, request: web.Request) -> web.Response:
        write_key = self._write_key(request)
        origin = public_origin(request, self.config)
        entry = self._cached(
            ("ours", write_key, origin, OUR_LIBRARY.stat().st_mtime),
            lambda: render_library(write_key, origin, self.browser),
        )
        return self._send(request, entry, _JS, self.browser.cache_max_age)

    async def settings(self, request: web.Request) -> web.Response:
        write_key = self._write_key(request)
        origin = public_origin(request, self.config)
        entry = self._cached(
            ("settings", write_key, origin),
            lambda: json.dumps(settings_json(write_key, origin, self.browser, self.config)),
        )
        return self._send(request, entry, "application/json", min(60.0, self.browser.cache_max_age))

    async def official_bundle(self, request: web.Request) -> web.Response:
        if self.bundle_dir is None:
            raise web.HTTPNotFound(text="browser.official_bundle_dir is not configured\n")
        write_key = self._write_key(request)
        origin = public_origin(request, self.config)
        standalone = self.bundle_dir / "standalone.js"

        def make() -> str:
            text = standalone.read_text("utf-8")
            text = text.replace('"__WRITE_KEY__"', _js_literal(write_key), 1)
            text = text.replace(
                "//# sourceMappingURL=standalone.js.map",
                f"//# sourceMappingURL={origin}/analytics-next/bundles/standalone.js.map",
            )
            return _official_prelude(write_key, origin) + text

        entry = self._cached(("official", write_key, origin, standalone.stat().st_mtime), make)
        return self._send(request, entry, _JS, self.browser.cache_max_age)

    async def official_chunk(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["chunk"]
        if self.bundle_dir is None or not _CHUNK_NAME.match(name) or ".." in name:
            raise web.HTTPNotFound()
        path = (self.bundle_dir / name).resolve()
        if path.parent != self.bundle_dir or not path.is_file():
            raise web.HTTPNotFound()
        hashed = re.search(r"\.[0-9a-f]{16,}\.js", name) is not None
        max_age = 365 * 86400 if hashed else self.browser.cache_max_age
        response = web.FileResponse(
            path,
            headers={
                "Cache-Control": f"public, max-age={int(max_age)}" + (", immutable" if hashed else ""),
                "Cross-Origin-Resource-Policy": "cross-origin",
                "X-Content-Type-Options": "nosniff",
                "Content-Type": (_JS if name.endswith(".js") else "application/json") + "; charset=utf-8",
            },
        )
        self._cors(request, response)
        return response

    async def snippet(self, request: web.Request) -> web.Response:
        write_key = request.query.get("writeKey") or request.query.get("write_key")
        if not write_key:
            raise web.HTTPBadRequest(text="add ?writeKey=<the source's write key>\n")
        if source_for_write_key(self.config, write_key) is None:
            raise web.HTTPNotFound(text="unknown write key\n")
        official = request.query.get("bundle") == "official"
        if official and self.bundle_dir is None:
            raise web.HTTPNotFound(text="browser.official_bundle_dir is not configured\n")
        text = render_snippet(write_key, public_origin(request, self.config), official=official)
        return web.Response(
            text=text, content_type="application/javascript", headers={"Cache-Control": "no-cache"}
        )


def add_browser_routes(app: web.Application, config: Config) -> None:
    """Add the browser routes (see the module docstring) to the ingestion app.

    Raises ValueError when ``browser.official_bundle_dir`` is set but holds no ``standalone.js``.
    Does nothing when ``browser.enabled`` is false.
    """
    browser = config.browser
    if not browser.enabled:
        return
    routes = BrowserRoutes(config, browser)
    app.router.add_get("/analytics.js/v1/{writeKey}/analytics.min.js", routes.our_library)
    app.router.add_get("/v1/projects/{writeKey}/settings", routes.settings)
    app.router.add_get(OFFICIAL_PATH, routes.official_bundle)
    app.router.add_get("/analytics-next/bundles/{chunk}", routes.official_chunk)
    app.router.add_get("/snippet.js", routes.snippet)
