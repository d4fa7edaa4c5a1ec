"""Segment's official @segment/analytics-next bundle, served first-party by the collector from
``browser.official_bundle_dir``, loading its settings from the collector and delivering through it."""

from __future__ import annotations

import json

from tests.browser.harness import OFFICIAL_UMD, WRITE_KEY, official_snippet, page_html


async def test_official_bundle_first_party(make_collector, site, page, npm_packages):
    collector = await make_collector(
        "official",
        browser={"official_bundle_dir": str(OFFICIAL_UMD), "consent_categories": ["Analytics"],
                 "batch": {"max_events": 2, "max_wait": "200ms"}},
    )
    requests = []
    page.on("request", lambda request: requests.append(request))
    # Every request the browser makes, preflights included (the DevTools protocol reports those).
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    preflights: list[dict] = []
    cdp.on("Network.requestWillBeSent",
           lambda e: e["request"]["method"] == "OPTIONS" and preflights.append(e["request"]))

    snippet = official_snippet(collector.origin, ajsPath=f"/analytics-next/v1/{WRITE_KEY}/analytics.min.js")
    script = (
        "analytics.identify('official-user', {plan: 'pro'});"
        "analytics.track('Official Track', {a: 1});"
        "document.addEventListener('DOMContentLoaded', () =>"
        "  analytics.trackLink(document.getElementById('l'), 'Official Link'));"
    )
    url = site.add(page_html(f"<script>{snippet}</script><script>{script}</script>",
                             "<a id='l' href='#here'>link</a>", "Official"))
    await page.goto(url)
    await page.wait_for_function("window.analytics && window.analytics.initialized === true", timeout=15000)
    anon = await page.evaluate("analytics.user().anonymousId()")
    events = await collector.events_of(anon, 3, timeout=15)
    by_type = {e["type"]: e for e in events}
    assert set(by_type) == {"page", "identify", "track"}
    track = by_type["track"]
    assert track["event"] == "Official Track" and track["properties"] == {"a": 1}
    assert track["userId"] == "official-user"
    assert track["context"]["library"]["name"] == "analytics.js"
    assert track["context"]["library"]["version"].startswith("next-")
    assert track["context"]["page"]["url"] == url
    assert track["messageId"].startswith("ajs-next-")

    # Its bundle, settings and events all went to the collector; nothing else was contacted.
    urls = [r.url for r in requests]
    others = [u for u in urls if not (u.startswith(collector.origin) or u.startswith(site.origin))]
    assert not others, others
    assert f"{collector.origin}/analytics-next/v1/{WRITE_KEY}/analytics.min.js" in urls
    assert f"{collector.origin}/v1/projects/{WRITE_KEY}/settings" in urls
    batch_requests = [r for r in requests if r.url == f"{collector.origin}/v1/b" and r.method == "POST"]
    assert batch_requests
    # analytics-next >= 1.84 sends Basic auth, so each call was preflighted (CORS): the collector
    # answered the preflight, else the events could not have arrived.
    headers = await batch_requests[0].all_headers()
    assert headers.get("authorization", "").startswith("Basic ")
    assert any(p["url"] == f"{collector.origin}/v1/b" and p["method"] == "OPTIONS" for p in preflights), preflights
    assert json.loads(batch_requests[0].post_data)["writeKey"] == WRITE_KEY

    # A lazy chunk comes from /analytics-next/bundles/ on the collector (trackLink loads one).
    await page.click("#l")
    await collector.events_of(anon, 4, timeout=15)
    chunk_urls = [u for u in (r.url for r in requests) if "/analytics-next/bundles/" in u]
    assert chunk_urls and all(u.startswith(f"{collector.origin}/analytics-next/bundles/") for u in chunk_urls)
    assert any(e.get("event") == "Official Link" for e in collector.events())
