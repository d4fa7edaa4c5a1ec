"""Our analytics.js in Chromium sends Google Analytics' cookie ids with each event, and the GA4
destination sends them on: a page with a _ga cookie loads the collector's snippet, the collector
(a real process) forwards to the GA4 double, which must receive the cookie's client id and the
_ga_<container> cookie's session id. Reuses the browser tests' harness (tests/browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio

from collector.browser.routes import render_snippet
from tests.browser.conftest import chromium, context, page, site  # noqa: F401  (the browser tests' fixtures)
from tests.browser.harness import WRITE_KEY, CollectorProcess, page_html, wait_loaded
from tests.vendors.ga4 import GA4Double

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "browser-api-secret"
MEASUREMENT_ID = "G-XYZ789"
CLIENT_COOKIE = "GA1.1.1234567890.1700000000"


@pytest_asyncio.fixture(loop_scope="session")
async def double():
    async with GA4Double(api_secret=SECRET, measurement_id=MEASUREMENT_ID) as d:
        yield d


@pytest_asyncio.fixture(loop_scope="session")
async def collector(tmp_path: Path, double):
    """The browser tests' collector process (its file destination kept) with a GA4 destination."""
    process = CollectorProcess(tmp_path / "collector")
    config = json.loads(process.config_path.read_text())
    config["destinations"]["ga4"] = {
        "type": "google_analytics_4", "measurement_id": MEASUREMENT_ID, "api_secret": SECRET,
        "endpoint": double.url, "batch": {"max_wait": 0.05},
    }
    process.config_path.write_text(json.dumps(config))
    await process.start()
    yield process
    await process.stop()


def snippet_page(collector, script: str, load_options: str = "") -> str:
    snippet = render_snippet(WRITE_KEY, collector.origin)
    if load_options:
        snippet = snippet.replace(f'analytics.load("{WRITE_KEY}");', f'analytics.load("{WRITE_KEY}", {load_options});')
        assert load_options in snippet
    return page_html(f"<script>{snippet}</script>\n<script>{script}</script>")


def sent_batches(page) -> list[dict]:
    """Every event the page posted to the collector."""
    events: list[dict] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/v1/b") and r.post_data
            and events.extend(json.loads(r.post_data)["batch"]))
    return events


async def test_the_ga_cookies_client_and_session_ids_reach_ga4(collector, double, site, context, page):
    await context.add_cookies([
        {"name": "_ga", "value": CLIENT_COOKIE, "url": site.origin},
        {"name": "_ga_XYZ789", "value": "GS1.1.1700000555.3.1.1700000600.0.0.0", "url": site.origin},
    ])
    sent = sent_batches(page)
    url = site.add(snippet_page(collector, """
        analytics.track('Video Played', {n: 1});
        analytics.track('Order Completed', {order_id: 'o-7', total: 12, currency: 'EUR',
                                            products: [{product_id: 'p1', name: 'Tea', price: 12, quantity: 1}]});
        analytics.track('Not For GA4', {}, {integrations: {'Google Analytics 4': false}});
        analytics.track('For None', {}, {integrations: {All: false}});
        analytics.track('Last One', {}, {integrations: {'Google Analytics 4': {custom: true}}});
    """))
    await page.goto(url)
    await wait_loaded(page)
    anonymous_id = await page.evaluate("analytics.user().anonymousId()")

    await collector.events_of(anonymous_id, 5)  # the archive has what the collector let through
    assert double.invalid == []
    # The two GA4 must not get were tracked before "Last One": had either gone to GA4, it would have
    # travelled with "Last One" (same client, same action) or before it.
    wanted = {"Last_One", "Video_Played", "page_view", "purchase"}
    accepted = await double.wait_for(lambda: wanted <= {e.name for e in double.accepted} and list(double.accepted))
    # (Events of different actions travel in different requests; each carries its own timestamp.)
    by_name = {e.name: e for e in accepted}
    assert set(by_name) == wanted and len(accepted) == 4
    for event in accepted:
        assert event.client_id == "1234567890.1700000000"  # the cookie's last two parts
        assert event.params["session_id"] == "1700000555"
        assert event.measurement_id == MEASUREMENT_ID
    purchase = by_name["purchase"].params
    assert purchase["transaction_id"] == "o-7" and purchase["items"][0]["item_id"] == "p1"

    # What the browser sent: the ids where Segment keeps one destination's options, but not where
    # the call turned GA4 off, nor (which would turn it on) where it turned every destination off.
    integrations = {e.get("event", e["type"]): e["integrations"] for e in sent}
    ids = {"clientId": "1234567890.1700000000", "sessionId": "1700000555"}
    assert integrations == {
        "page": {"Google Analytics 4": ids}, "Video Played": {"Google Analytics 4": ids},
        "Order Completed": {"Google Analytics 4": ids}, "Not For GA4": {"Google Analytics 4": False},
        "For None": {"All": False}, "Last One": {"Google Analytics 4": {**ids, "custom": True}},
    }


async def test_the_newer_session_cookie_of_the_named_container(collector, double, site, context, page):
    await context.add_cookies([
        {"name": "_ga", "value": "GA1.2.987654321.1690000000", "url": site.origin},
        {"name": "_ga_OTHER1", "value": "GS1.1.1111111111.1.0.1111111111.0.0.0", "url": site.origin},
        {"name": "_ga_XYZ789", "value": "GS2.1.s1700000777$o5$g1$t1700000800$j0$l0$h0", "url": site.origin},
    ])
    options = "{integrations: {'Google Analytics 4': {measurementId: 'G-XYZ789'}}}"
    url = site.add(snippet_page(collector, "analytics.track('Video Played');", options))
    await page.goto(url)
    await wait_loaded(page)
    accepted = await double.wait_for_accepted(2, timeout=15)
    assert [(e.name, e.client_id, e.params.get("session_id")) for e in accepted] == [
        ("page_view", "987654321.1690000000", "1700000777"), ("Video_Played", "987654321.1690000000", "1700000777")]


async def test_without_the_ga_cookie_the_client_id_is_the_anonymous_id(collector, double, site, page):
    sent = sent_batches(page)
    await page.goto(site.add(snippet_page(collector, "analytics.track('Video Played');")))
    await wait_loaded(page)
    anonymous_id = await page.evaluate("analytics.user().anonymousId()")
    accepted = await double.wait_for_accepted(2, timeout=15)
    assert [(e.name, e.client_id, "session_id" in e.params) for e in accepted] == [
        ("page_view", anonymous_id, False), ("Video_Played", anonymous_id, False)]
    assert [e["integrations"] for e in sent] == [{}, {}]
