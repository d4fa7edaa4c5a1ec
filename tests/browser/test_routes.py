"""The browser routes over HTTP (the real collector, and a bare app for config variants), the
snippet renderer, the first-party cookie, and the ``browser:`` config section."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from tests.browser.harness import WRITE_KEY

from collector.browser.config import BrowserConfig
from collector.browser.cookies import refresh_anonymous_id_cookie
from collector.browser.routes import add_browser_routes, render_snippet
from collector.config.model import Config, ServerConfig, SourceConfig
from collector.config.units import decode_hook

MAX_GZIPPED = 8 * 1024


def make_config(browser: BrowserConfig | None = None, **server) -> Config:
    return Config(
        server=ServerConfig(**server),
        sources={"website": SourceConfig(write_key=WRITE_KEY), "old": SourceConfig(write_key="wk_off", enabled=False)},
        destinations={},
        browser=browser or BrowserConfig(),
    )


async def bare_app(config) -> TestClient:
    app = web.Application()
    add_browser_routes(app, config)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


# ---------------------------------------------------------------------------------------------
# Against the real collector


async def test_bundle_is_at_most_8_kb_gzipped_as_served(collector):
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        url = f"{collector.origin}/analytics.js/v1/{WRITE_KEY}/analytics.min.js"
        async with http.get(url, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"
            assert response.headers["Content-Type"].startswith("application/javascript")
            body = await response.read()
    assert len(body) <= MAX_GZIPPED, f"analytics.js is {len(body)} bytes gzipped, over {MAX_GZIPPED}"
    text = gzip.decompress(body).decode()
    # The write key and the collector's origin are baked in: no settings round trip.
    assert f'"writeKey":"{WRITE_KEY}"' in text and f'"origin":"{collector.origin}"' in text
    assert "/*@config*/" not in text


async def test_script_caching_and_unknown_keys(collector):
    base = collector.origin
    async with aiohttp.ClientSession() as http:
        url = f"{base}/analytics.js/v1/{WRITE_KEY}/analytics.min.js"
        async with http.get(url) as response:
            assert response.status == 200
            etag = response.headers["ETag"]
            assert "max-age=" in response.headers["Cache-Control"]
            plain = await response.text()
        async with http.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
        async with http.get(url, headers={"Accept-Encoding": "identity"}) as response:
            assert "Content-Encoding" not in response.headers and await response.text() == plain
        for path in (
            "/analytics.js/v1/nope/analytics.min.js",
            "/v1/projects/nope/settings",
            "/snippet.js?writeKey=nope",
            f"/analytics-next/v1/{WRITE_KEY}/analytics.min.js",  # no official_bundle_dir here
        ):
            async with http.get(base + path) as response:
                assert response.status == 404, path


async def test_settings_for_the_official_bundle(collector):
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{collector.origin}/v1/projects/{WRITE_KEY}/settings", headers={"Origin": "http://localhost:1"}
        ) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] in ("*", "http://localhost:1")
            settings = await response.json()
    host = collector.origin.split("://")[1]
    segment = settings["integrations"]["Segment.io"]
    assert list(settings["integrations"]) == ["Segment.io"]
    assert segment["apiKey"] == WRITE_KEY
    assert segment["apiHost"] == f"{host}/v1" and segment["protocol"] == "http"
    assert settings["metrics"] == {"sampleRate": 0, "host": f"{host}/v1"}
    assert settings["remotePlugins"] == [] and settings["enabledMiddleware"] == {}
    assert settings["consentSettings"]["allCategories"] == []


async def test_snippet_route(collector):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{collector.origin}/snippet.js", params={"writeKey": WRITE_KEY}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("application/javascript")
            text = await response.text()
        async with http.get(f"{collector.origin}/snippet.js") as response:
            assert response.status == 400
    assert text == render_snippet(WRITE_KEY, collector.origin)
    assert f'"{collector.origin}" + "/analytics.js/v1/"' in text
    assert f'analytics.load("{WRITE_KEY}");' in text and "analytics.page();" in text
    for method in ("trackSubmit", "addDestinationMiddleware", "register", "screen", "setAnonymousId"):
        assert f'"{method}"' in text


# ---------------------------------------------------------------------------------------------
# A bare app with the routes, for config variants


async def test_public_origin_and_forwarded_headers():
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "data.example.com"}
    # Untrusted peer: X-Forwarded-* ignored.
    client = await bare_app(make_config())
    try:
        response = await client.get(f"/v1/projects/{WRITE_KEY}/settings", headers=forwarded)
        segment = (await response.json())["integrations"]["Segment.io"]
        assert segment["protocol"] == "http" and segment["apiHost"] == f"{client.host}:{client.port}/v1"
    finally:
        await client.close()
    # Trusted proxy: believed.
    client = await bare_app(make_config(trusted_proxies=["127.0.0.0/8", "::1"]))
    try:
        response = await client.get(f"/v1/projects/{WRITE_KEY}/settings", headers=forwarded)
        segment = (await response.json())["integrations"]["Segment.io"]
        assert segment["protocol"] == "https" and segment["apiHost"] == "data.example.com/v1"
        response = await client.get(f"/analytics.js/v1/{WRITE_KEY}/analytics.min.js", headers=forwarded)
        assert '"origin":"https://data.example.com"' in await response.text()
    finally:
        await client.close()
    # public_url wins, path prefix included; consent categories from the config.
    browser = BrowserConfig(consent_categories=["Analytics", "Ads"])
    client = await bare_app(make_config(browser, public_url="https://www.example.com/collect/", trusted_proxies=["127.0.0.1"]))
    try:
        response = await client.get(f"/v1/projects/{WRITE_KEY}/settings", headers=forwarded)
        settings = await response.json()
        assert settings["integrations"]["Segment.io"]["apiHost"] == "www.example.com/collect/v1"
        assert settings["consentSettings"] == {"allCategories": ["Analytics", "Ads"], "hasUnmappedDestinations": True}
        response = await client.get(f"/snippet.js?writeKey={WRITE_KEY}")
        assert '"https://www.example.com/collect" + "/analytics.js/v1/"' in await response.text()
        response = await client.get("/analytics.js/v1/wk_off/analytics.min.js")  # disabled source
        assert response.status == 404
    finally:
        await client.close()


async def test_official_bundle_routes_are_safe(tmp_path: Path):
    umd = tmp_path / "umd"
    umd.mkdir()
    (umd / "standalone.js").write_text(
        'window.analyticsWriteKey="__WRITE_KEY__";console.log(1)\n//# sourceMappingURL=standalone.js.map'
    )
    (umd / "auto-track.bundle.0123456789abcdef0123.js").write_text("chunk()")
    (umd / "notes.txt").write_text("not served")
    (tmp_path / "secret.js").write_text("secret")
    os.symlink(tmp_path / "secret.js", umd / "link.js")
    client = await bare_app(make_config(BrowserConfig(official_bundle_dir=str(umd))))
    try:
        response = await client.get(f"/analytics-next/v1/{WRITE_KEY}/analytics.min.js")
        text = await response.text()
        assert response.status == 200
        assert f'window.analyticsWriteKey="{WRITE_KEY}"' in text
        assert f'a._cdn="http://{client.host}:{client.port}"' in text
        assert "/analytics-next/bundles/standalone.js.map" in text
        response = await client.get("/analytics-next/bundles/auto-track.bundle.0123456789abcdef0123.js")
        assert response.status == 200 and await response.text() == "chunk()"
        assert "immutable" in response.headers["Cache-Control"]
        for path in (
            "/analytics-next/bundles/..%2fsecret.js",
            "/analytics-next/bundles/%2e%2e%2fsecret.js",
            "/analytics-next/bundles/%2e%2e/secret.js",
            "/analytics-next/bundles/link.js",
            "/analytics-next/bundles/notes.txt",
            "/analytics-next/bundles/.hidden.js",
            "/analytics-next/bundles/missing.js",
            "/analytics-next/v1/nope/analytics.min.js",
        ):
            response = await client.get(path)
            assert response.status == 404, path
            assert "secret" not in await response.text()
    finally:
        await client.close()
    with pytest.raises(ValueError, match="standalone.js"):
        add_browser_routes(web.Application(), make_config(BrowserConfig(official_bundle_dir=str(tmp_path / "nowhere"))))


def test_render_snippet_variants():
    official = render_snippet("k\"ey", "https://data.example.com/", official=True, page=False, script_tag=True)
    assert official.startswith("<script>\n") and official.endswith("</script>\n")
    assert '"https://data.example.com" + "/analytics-next/v1/"' in official
    assert 'analytics.load("k\\"ey");' in official and "analytics.page()" not in official
    # Nothing in the output can close the script element early.
    assert "</script" not in render_snippet("</script><b>", "https://x.example.com")


# ---------------------------------------------------------------------------------------------
# The first-party cookie


def _cookie_after(headers: dict, anonymous_id: str | None = "anon-1", **cookie) -> str | None:
    config = msgspec.convert({"cookie": cookie}, BrowserConfig, dec_hook=decode_hook)
    request = make_mocked_request("POST", "/v1/b", headers=headers)
    response = web.Response()
    refresh_anonymous_id_cookie(request, response, anonymous_id, config)
    morsel = response.cookies.get("ajs_anonymous_id")
    return morsel.output(header="").strip() if morsel else None


def test_cookie_refresh_rules():
    same_host = {"Host": "www.example.com", "Origin": "https://www.example.com"}
    subdomain = {"Host": "data.example.com", "Origin": "https://www.example.com"}
    # Off unless enabled.
    assert _cookie_after(same_host) is None
    # Same host, no domain configured: a host-only cookie, Secure because the page is https.
    header = _cookie_after(same_host, enabled=True)
    assert header.startswith("ajs_anonymous_id=anon-1;")
    assert "Domain" not in header and "Path=/" in header and "SameSite=Lax" in header
    assert "Max-Age=31536000" in header and "Secure" in header and "HttpOnly" not in header
    # Collector on a subdomain: needs the domain configured.
    assert _cookie_after(subdomain, enabled=True) is None
    header = _cookie_after(subdomain, enabled=True, domain=".Example.com", max_age="30d", same_site="Strict")
    assert "Domain=example.com" in header and "Max-Age=2592000" in header and "SameSite=Strict" in header
    # Another site: a third-party cookie would be useless; not set.
    assert _cookie_after({"Host": "collector.example.net", "Origin": "https://www.example.com"},
                         enabled=True, domain="example.com") is None
    # No Origin or Referer (server-side SDKs): not set. Referer works when Origin is absent.
    assert _cookie_after({"Host": "www.example.com"}, enabled=True) is None
    assert _cookie_after({"Host": "www.example.com", "Referer": "http://www.example.com/a"}, enabled=True)
    # Plain http page: not Secure unless asked.
    assert "Secure" not in _cookie_after({"Host": "localhost:8088", "Origin": "http://localhost:3000"}, enabled=True)
    assert "Secure" in _cookie_after({"Host": "localhost:8088", "Origin": "http://localhost:3000"},
                                     enabled=True, secure=True)
    # Ids that cannot be one.
    assert _cookie_after(same_host, None, enabled=True) is None
    assert _cookie_after(same_host, "", enabled=True) is None
    assert _cookie_after(same_host, "x" * 201, enabled=True) is None
    assert _cookie_after(same_host, "a b;c", enabled=True).startswith("ajs_anonymous_id=a%20b%3Bc;")


def test_browser_config_section():
    config = msgspec.convert(
        {"consent_categories": ["A"], "batch": {"max_wait": "250ms", "max_bytes": "32KB"},
         "queue": {"max_age": "1d"}, "cookie": {"same_site": "None"}},
        BrowserConfig, dec_hook=decode_hook,
    )
    assert config.batch.max_wait == 0.25 and config.batch.max_bytes == 32000 and config.queue.max_age == 86400
    for bad in ({"nope": 1}, {"batch": {"max_bytes": "2MB"}}, {"cookie": {"domain": "https://x.com"}},
                {"cookie": {"same_site": "None", "secure": False}}, {"batch": {"max_events": 0}}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, BrowserConfig, dec_hook=decode_hook)
