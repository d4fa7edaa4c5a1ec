"""Our analytics.js in a real browser, loaded by Segment's unmodified snippet, delivering through
the real collector."""

from __future__ import annotations

import asyncio
import json
import re
import time

from tests.browser.harness import WRITE_KEY, SentOrder, official_snippet, page_html, wait_loaded

from collector.browser.routes import render_snippet

MESSAGE_ID = re.compile(r"^ajs-next-\d{13}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def snippet_page(collector, script: str = "", title: str = "Test page", body: str = "", **snippet_options) -> str:
    return page_html(
        f"<script>{official_snippet(collector.origin, **snippet_options)}</script>\n<script>{script}</script>",
        body, title,
    )


async def anonymous_id(page) -> str:
    return await page.evaluate("analytics.user().anonymousId()")


async def test_snippet_loads_our_library_page_identify_track_with_context(collector, site, page):
    url = site.add(
        snippet_page(
            collector,
            "analytics.identify('user-1', {email: 'ada@example.com'});"
            "analytics.track('Signed Up', {plan: 'pro'});",
            title="Pricing",
        ),
        "?utm_source=newsletter&utm_medium=email&utm_campaign=spring&x=1",
    )
    referrer = f"{site.origin}/from-here"
    batches = []
    page.on("request", lambda r: r.url.endswith("/v1/b") and batches.append(r))
    sent = SentOrder(page)
    await page.goto(url, referer=referrer)
    await wait_loaded(page)
    anon = await anonymous_id(page)
    assert UUID4.match(anon)

    events = sent.sort(await collector.events_of(anon, 3))
    assert [e["type"] for e in events] == ["page", "identify", "track"]
    page_event, identify, track = events

    # Sent cross-origin (page on localhost, collector on 127.0.0.1) as batches to /v1/b.
    assert batches and all(r.url == f"{collector.origin}/v1/b" and r.method == "POST" for r in batches)
    body = json.loads(batches[0].post_data)
    assert body["writeKey"] == WRITE_KEY and body["sentAt"] and body["batch"]

    for event in events:
        assert MESSAGE_ID.match(event["messageId"]), event["messageId"]
        assert event["anonymousId"] == anon
        ctx = event["context"]
        assert ctx["library"]["name"] == "analytics.js" and ctx["library"]["version"].startswith("collector-")
        assert ctx["page"] == {
            "path": "/" + url.split("/")[3].split("?")[0],
            "referrer": referrer,
            "search": "?utm_source=newsletter&utm_medium=email&utm_campaign=spring&x=1",
            "title": "Pricing",
            "url": url,
        }
        assert ctx["campaign"] == {"source": "newsletter", "medium": "email", "name": "spring"}
        assert "HeadlessChrome" in ctx["userAgent"] or "Chrome" in ctx["userAgent"]
        assert ctx["locale"] and ctx["timezone"]
        assert ctx["screen"]["width"] > 0 and ctx["screen"]["height"] > 0 and ctx["screen"]["density"] > 0
        assert "consent" not in ctx  # no consent given, none claimed
        assert event["receivedAt"] and event["timestamp"]

    assert page_event["userId"] is None
    assert page_event["properties"]["url"] == url and page_event["properties"]["title"] == "Pricing"
    assert identify["userId"] == "user-1" and identify["traits"] == {"email": "ada@example.com"}
    assert track["userId"] == "user-1"
    assert track["event"] == "Signed Up" and track["properties"] == {"plan": "pro"}

    # The identity is stored the way Segment stores it.
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["ajs_anonymous_id"]["value"] == anon
    assert cookies["ajs_user_id"]["value"] == "user-1"
    assert cookies["ajs_anonymous_id"]["sameSite"] == "Lax"
    assert 360 * 86400 < cookies["ajs_anonymous_id"]["expires"] - time.time() <= 366 * 86400
    stored = await page.evaluate(
        "['ajs_anonymous_id','ajs_user_id','ajs_user_traits'].map(k => localStorage.getItem(k))"
    )
    assert [json.loads(v) for v in stored] == [anon, "user-1", {"email": "ada@example.com"}]
    assert await page.evaluate("[analytics.user().id(), analytics.user().traits().email]") == ["user-1", "ada@example.com"]


async def test_anonymous_id_kept_across_reloads(collector, site, page):
    url = site.add(snippet_page(collector, "analytics.track('Viewed', {n: 1})"))
    await page.goto(url)
    await wait_loaded(page)
    first = await anonymous_id(page)
    await page.reload()
    await wait_loaded(page)
    assert await anonymous_id(page) == first
    await page.goto(url)
    await wait_loaded(page)
    assert await anonymous_id(page) == first
    events = await collector.events_of(first, 6)
    assert len({e["messageId"] for e in events}) == len(events)
    assert {e["anonymousId"] for e in events} == {first}


async def test_snippet_with_its_own_global_name(collector, site, page):
    url = site.add(snippet_page(collector, "seg.track('Under Another Name')", globalAnalyticsKey="seg"))
    await page.goto(url)
    await wait_loaded(page, "seg")
    assert await page.evaluate("typeof window.analytics") == "undefined"
    anon = await page.evaluate("seg.user().anonymousId()")
    events = await collector.events_of(anon, 2)
    assert sorted(e["type"] for e in events) == ["page", "track"]


async def test_reads_identity_written_by_segment(collector, site, context):
    """A site switching from Segment keeps its visitors: ids in cookies (raw or JSON-quoted) and
    JSON-encoded in localStorage are read."""
    url = site.add(snippet_page(collector, "analytics.track('Returning')"))
    host = site.origin.split("//")[1].split(":")[0]
    await context.add_cookies([
        {"name": "ajs_anonymous_id", "value": "%22old-anon-1%22", "domain": host, "path": "/"},
        {"name": "ajs_user_id", "value": "old-user", "domain": host, "path": "/"},
    ])
    page = await context.new_page()
    await page.goto(url)
    await wait_loaded(page)
    assert await page.evaluate("[analytics.user().anonymousId(), analytics.user().id()]") == ["old-anon-1", "old-user"]
    event = (await collector.events_of("old-anon-1", 2))[1]
    assert event["event"] == "Returning" and event["userId"] == "old-user"

    # localStorage (JSON-encoded, as analytics-next writes it) wins over the cookie.
    await page.evaluate("""() => {
        localStorage.setItem('ajs_anonymous_id', JSON.stringify('ls-anon-2'));
        localStorage.setItem('ajs_user_traits', JSON.stringify({plan: 'gold'}));
        localStorage.setItem('ajs_group_id', JSON.stringify('g-7'));
        localStorage.setItem('ajs_group_properties', JSON.stringify({size: 3}));
    }""")
    await page.reload()
    await wait_loaded(page)
    assert await page.evaluate(
        "[analytics.user().anonymousId(), analytics.user().traits(), analytics.group().id(), analytics.group().traits()]"
    ) == ["ls-anon-2", {"plan": "gold"}, "g-7", {"size": 3}]
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    assert cookies["ajs_anonymous_id"] == "ls-anon-2"  # copied back to the cookie
    await collector.events_of("ls-anon-2", 2)
    await page.close()


async def test_whole_snippet_api(collector, site, page):
    """Every stub the snippet declares works, calls made before the load are replayed in order
    (setup calls first), and the documented results reach the collector."""
    script = """
      window.seen = [];
      analytics.on('track', (name) => seen.push('on:' + name));
      analytics.once('track', (name) => seen.push('once:' + name));
      analytics.ready(() => seen.push('ready'));
      analytics.debug(false);
      analytics.page('Docs', 'Install', {section: 'a'});
      analytics.track('First', {n: 1});
      analytics.addSourceMiddleware(({payload, next}) => {
        payload.obj.context.fromMiddleware = true;
        if (payload.obj.event === 'Dropped') return next(null);
        next(payload);
      });
      analytics.addDestinationMiddleware('Segment.io', ({payload, next}) => {
        payload.obj.properties = {...payload.obj.properties, viaDestination: 1};
        next(payload);
      });
      analytics.addIntegrationMiddleware(({payload, next}) => next(payload));
      analytics.register({name: 'enricher', type: 'enrichment', version: '1', isLoaded: () => true,
        load: () => Promise.resolve(),
        track: (ctx) => { ctx.updateEvent('context.enriched', 'yes'); return ctx; }});
      analytics.setAnonymousId('anon-api-1');
      analytics.identify('u-api', {name: 'Ada'});
      analytics.group('g-api', {plan: 'team'});
      analytics.screen('Home');
      analytics.track('Dropped');
      analytics.pageview('/virtual');
      analytics.alias('u-api-new');
      analytics.track('Second', {n: 2}, {context: {ip: '0.0.0.0'}, integrations: {Mixpanel: false}});
      analytics.trackClick([], 'Nothing');
      analytics.trackSubmit([], 'Nothing');
      analytics.off('never', () => {});
      document.addEventListener('DOMContentLoaded', () => {
        analytics.trackLink(document.getElementById('out'), 'Link Clicked', (el) => ({href: el.getAttribute('href')}));
        analytics.trackForm(document.getElementById('form'), 'Form Sent', {form: 'signup'});
      });
    """
    body = (
        "<a id='out' href='/elsewhere'>out</a>"
        "<form id='form' action='/submitted' method='get'><input name='q' value='1'><button id='go'>go</button></form>"
    )
    url = site.add(snippet_page(collector, script, body=body, page=False))
    site.pages["/elsewhere"] = page_html("", "elsewhere")
    site.pages["/submitted"] = page_html("", "submitted")
    sent = SentOrder(page)
    await page.goto(url)
    await wait_loaded(page)
    assert await page.evaluate("window.analytics.SNIPPET_VERSION") is not None
    events = sent.sort(await collector.events_of("anon-api-1", 8))
    by_type = [(e["type"], e.get("event") or e.get("name")) for e in events]
    assert by_type[:8] == [
        ("page", "Install"), ("track", "First"), ("identify", None), ("group", None), ("screen", "Home"),
        ("page", None), ("alias", None), ("track", "Second"),
    ], by_type
    page_event, first, identify, group, screen, pageview, alias, second = events[:8]
    assert page_event["category"] == "Docs" and page_event["properties"]["category"] == "Docs"
    assert page_event["properties"]["section"] == "a" and page_event["properties"]["name"] == "Install"
    assert first["context"]["fromMiddleware"] is True and first["context"]["enriched"] == "yes"
    assert first["properties"] == {"n": 1, "viaDestination": 1}
    assert identify["userId"] == "u-api" and identify["traits"] == {"name": "Ada"}
    assert group["groupId"] == "g-api" and group["traits"] == {"plan": "team"} and group["userId"] == "u-api"
    assert pageview["properties"]["path"] == "/virtual"
    assert alias["userId"] == "u-api-new" and alias["previousId"] == "u-api"
    assert second["integrations"] == {"Mixpanel": False}
    assert "Dropped" not in [e.get("event") for e in events]
    assert await page.evaluate("seen") == ["ready", "on:First", "once:First", "on:Second"]
    assert await page.evaluate(
        "[analytics.user().id(), analytics.user().anonymousId(), analytics.user().traits(),"
        " analytics.group().id(), analytics.group().traits(), analytics.group().anonymousId()]"
    ) == ["u-api", "anon-api-1", {"name": "Ada"}, "g-api", {"plan": "team"}, None]

    # After the load the methods return promises resolving to a context with the event.
    ctx_event = await page.evaluate("analytics.track('Direct', {d: 1}).then(ctx => ctx.event.event)")
    assert ctx_event == "Direct"

    # trackLink: the event is sent and the browser still follows the link.
    await page.click("#out")
    await page.wait_for_url(f"{site.origin}/elsewhere")
    clicked = await collector.events_of("anon-api-1", 10)
    link = next(e for e in clicked if e.get("event") == "Link Clicked")
    assert link["properties"] == {"href": "/elsewhere", "viaDestination": 1}
    assert "Direct" in [e.get("event") for e in clicked]

    # trackForm: the event is sent and the form is still submitted.
    await page.goto(url)
    await wait_loaded(page)
    await page.click("#go")
    await page.wait_for_url(f"{site.origin}/submitted?q=1")
    await collector.wait_for(
        lambda evs: any(e.get("event") == "Form Sent" and e["properties"] == {"form": "signup", "viaDestination": 1} for e in evs)
    )

    # reset: a new anonymous id, no user, no group; cookies and storage cleared.
    await page.goto(url)
    await wait_loaded(page)
    state = await page.evaluate("""() => { analytics.reset();
        return [analytics.user().id(), analytics.user().anonymousId(), analytics.group().id(),
                localStorage.getItem('ajs_user_id'), document.cookie.includes('ajs_user_id=')]; }""")
    assert state[0] is None and state[1] != "anon-api-1" and UUID4.match(state[1])
    assert state[2] is None and state[3] is None and state[4] is False


async def test_identify_with_other_user_gets_new_anonymous_id(collector, site, page):
    url = site.add(snippet_page(collector, "", page=False))
    await page.goto(url)
    await wait_loaded(page)
    ids = await page.evaluate("""async () => {
        const a = analytics.user().anonymousId();
        await analytics.identify('first-user');
        const b = analytics.user().anonymousId();
        await analytics.identify('second-user', {x: 1});
        return [a, b, analytics.user().anonymousId(), analytics.user().traits()];
    }""")
    assert ids[0] == ids[1] and ids[2] != ids[0] and ids[3] == {"x": 1}


async def test_retry_rules(collector, site, page):
    """5xx and 429 (honouring Retry-After) are retried; other 4xx are dropped; while waiting the
    events stay in localStorage."""
    statuses = [500, 429, 200, 400, 200]
    seen: list[tuple[int, list[str], float]] = []

    async def answer(route, request):
        status = statuses[len(seen)] if len(seen) < len(statuses) else 200
        names = [e.get("event") for e in json.loads(request.post_data)["batch"]]
        seen.append((status, names, time.monotonic()))
        headers = {"Access-Control-Allow-Origin": "*"}
        if status == 429:
            headers["Retry-After"] = "2"
            headers["Access-Control-Expose-Headers"] = "Retry-After"
        await route.fulfill(status=status, body='{"success":false}', headers=headers)

    await page.route(f"{collector.origin}/v1/b", answer)
    url = site.add(snippet_page(collector, "analytics.track('Kept')", page=False))
    await page.goto(url)
    await wait_loaded(page)
    for _ in range(200):
        if len(seen) >= 3:
            break
        await asyncio.sleep(0.1)
    assert [s[0] for s in seen[:3]] == [500, 429, 200]
    assert all(s[1] == ["Kept"] for s in seen[:3])
    assert seen[2][2] - seen[1][2] >= 1.8  # Retry-After: 2
    assert await page.evaluate(f"localStorage.getItem('ajs_collector_queue:{WRITE_KEY}')") is None

    await page.evaluate("analytics.track('Refused')")
    for _ in range(150):
        if len(seen) >= 4:
            break
        await asyncio.sleep(0.1)
    await page.evaluate("analytics.track('After')")
    for _ in range(150):
        if len(seen) >= 5:
            break
        await asyncio.sleep(0.1)
    assert seen[3][:2] == (400, ["Refused"])
    assert seen[4][:2] == (200, ["After"])  # the refused event was not sent again


async def test_events_sent_while_collector_is_down_are_delivered_when_it_is_back(make_collector, site, context):
    collector = await make_collector("offline")
    url = site.add(snippet_page(collector, "", page=False))
    queue_key = f"ajs_collector_queue:{WRITE_KEY}"
    page = await context.new_page()
    await page.goto(url)
    await wait_loaded(page)
    anon = await anonymous_id(page)

    # 1. Down, then back while the page is open: its retries deliver.
    await collector.stop()
    await page.evaluate("analytics.track('While Down 1')")
    await page.wait_for_function(
        f"(JSON.parse(localStorage.getItem('{queue_key}')) || {{}}).attempts >= 1", timeout=10000
    )
    await collector.start()
    events = await collector.events_of(anon, 1, timeout=15)
    assert [e["event"] for e in events] == ["While Down 1"]

    # 2. Down, the page goes away, the collector comes back, a later page load delivers.
    await collector.stop()
    await page.evaluate("analytics.track('While Down 2'); analytics.track('While Down 3')")
    await page.wait_for_function(
        f"(JSON.parse(localStorage.getItem('{queue_key}')) || {{}}).attempts >= 1", timeout=10000
    )
    await page.goto("about:blank")
    await page.close()
    await collector.start()
    await asyncio.sleep(0.5)
    assert [e["event"] for e in collector.events()] == ["While Down 1"]  # nobody sent them yet
    page = await context.new_page()
    await page.goto(site.add(snippet_page(collector, "", page=False)))
    await wait_loaded(page)
    events = await collector.events_of(anon, 3, timeout=15)
    assert [e["event"] for e in events] == ["While Down 1", "While Down 2", "While Down 3"]
    await page.wait_for_function(f"localStorage.getItem('{queue_key}') === null", timeout=10000)
    await page.close()


async def test_pagehide_flush_delivers_the_last_event(collector, site, page):
    # Batches of 100 or every 60 s: only the pagehide flush can deliver this one in time.
    html = page_html(
        "<script>" + render_snippet(WRITE_KEY, collector.origin, page=False).replace(
            f'analytics.load("{WRITE_KEY}");',
            "analytics.load(%s, {integrations: {'Segment.io': {deliveryStrategy: "
            "{config: {size: 100, timeout: 60000}}}}});" % json.dumps(WRITE_KEY),
        ) + "</script>"
    )
    url = site.add(html)
    await page.goto(url)
    await wait_loaded(page)
    anon = await anonymous_id(page)
    await page.evaluate("analytics.track('Last Event', {final: true})")
    await asyncio.sleep(0.5)
    assert not [e for e in collector.events() if e.get("anonymousId") == anon]
    assert "Last Event" in await page.evaluate(f"localStorage.getItem('ajs_collector_queue:{WRITE_KEY}')")
    await page.goto("about:blank")  # pagehide
    events = await collector.events_of(anon, 1, timeout=10)
    assert events[0]["event"] == "Last Event" and events[0]["properties"] == {"final": True}


async def test_consent_held_then_granted(make_collector, site, page):
    collector = await make_collector(
        "consent", browser={"consent_categories": ["Analytics", "Advertising"], "hold_until_consent": True,
                            "batch": {"max_wait": "200ms"}},
    )
    url = site.add(page_html(f"<script>{render_snippet(WRITE_KEY, collector.origin)}</script>"))
    await page.goto(url)
    await wait_loaded(page)
    anon = await anonymous_id(page)
    await page.evaluate("analytics.track('Before Consent')")
    await asyncio.sleep(1.0)
    assert not [e for e in collector.events() if e.get("anonymousId") == anon]
    assert await page.evaluate(f"localStorage.getItem('ajs_collector_queue:{WRITE_KEY}')") is None
    assert await page.evaluate("analytics.consent()") is None

    await page.evaluate("analytics.setConsent({Analytics: true})")
    await page.evaluate("analytics.track('After Consent')")
    granted = {"Analytics": True, "Advertising": False}
    events = await collector.events_of(anon, 4)
    assert [(e["type"], e.get("event")) for e in events] == [
        ("page", None), ("track", "Before Consent"),
        ("track", "Segment Consent Preference Updated"), ("track", "After Consent"),
    ]
    for event in events:
        assert event["context"]["consent"] == {"categoryPreferences": granted}

    # The choice is remembered: the next page sends at once, with the same preferences; the same
    # choice again is no change; a different one is.
    await page.reload()
    await wait_loaded(page)
    await page.evaluate("analytics.setConsent({Analytics: true, Advertising: false})")
    await page.evaluate("analytics.setConsent({Analytics: true, Advertising: true})")
    events = await collector.events_of(anon, 6)
    assert [(e["type"], e.get("event")) for e in events[4:]] == [
        ("page", None), ("track", "Segment Consent Preference Updated"),
    ]
    assert events[4]["context"]["consent"] == {"categoryPreferences": granted}
    assert events[5]["context"]["consent"] == {"categoryPreferences": {"Analytics": True, "Advertising": True}}


async def test_collector_sets_first_party_cookie_on_same_site(make_collector, site, page):
    """Page on localhost:A, collector on localhost:B: same site, so the collector's answer can
    set the ajs_anonymous_id cookie the page reads (our library sends credentials for it)."""
    collector = await make_collector("cookie", host="localhost", browser={"cookie": {"enabled": True, "max_age": "30d"}},
                                     server={"cors": {"allowed_origins": [site.origin]}})
    answers = []
    page.on("response", lambda r: r.url == f"{collector.origin}/v1/b" and answers.append(r))
    await page.goto(site.add(page_html(f"<script>{render_snippet(WRITE_KEY, collector.origin)}</script>")))
    await wait_loaded(page)
    anon = await anonymous_id(page)
    await collector.events_of(anon, 1)
    headers = await answers[0].all_headers()
    assert answers[0].status == 200
    assert headers["set-cookie"].startswith(f"ajs_anonymous_id={anon};") and "Max-Age=2592000" in headers["set-cookie"]
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-allow-origin"] == site.origin

    # The browser keeps what the collector sets, even an id the page's script never wrote.
    await page.evaluate("""async (origin) => {
        await fetch(origin + '/v1/b', {method: 'POST', credentials: 'include', body: JSON.stringify({
            writeKey: 'wk_web', batch: [{type: 'track', event: 'Server Cookie', anonymousId: 'server-made',
                                         messageId: 'server-made-1'}]})});
    }""", collector.origin)
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["ajs_anonymous_id"]["value"] == "server-made"
    assert cookies["ajs_anonymous_id"]["domain"] == "localhost"
