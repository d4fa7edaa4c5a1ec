"""ActionDestination against the Toy API (tests/destinations/actions/toy.py), a local server:
subscriptions, per-event outcomes, batch keys, hashing, retries of single actions, auth refresh,
pauses, rate limit, endpoint override, secrets, unmatched events; then end to end through the
config loader and the real dispatcher."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import textwrap
import time
from typing import Any

import aiohttp
import msgspec
import pytest

from collector.config.loader import load_config_text
from collector.config.model import StorageConfig
from collector.config.units import decode_hook
from collector.delivery.dispatcher import Dispatcher
from collector.destinations import registry
from collector.destinations.actions.destination import ActionDestination, ActionSettings
from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.actions.settings import SettingsError
from collector.destinations.base import BuildContext, Outcome
from collector.log.event_log import EventLog
from collector.metrics import Metrics
from tests.destinations.fakes import envelopes

from .toy import Toy, ToyServer, ToySettings


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def server():
    async with ToyServer() as toy_server:
        yield toy_server


def settings(server: ToyServer, **overrides: Any) -> ToySettings:
    data = {"type": "toy", "api_key": "toy-key", "endpoint": server.origin, **overrides}
    return msgspec.convert(data, ToySettings, strict=False, dec_hook=decode_hook)


def build(server: ToyServer, http: aiohttp.ClientSession, cls: type[Toy] = Toy, **overrides: Any) -> Toy:
    destination = cls("toy", settings(server, **overrides), BuildContext(http, ""))
    destination.metrics = Metrics()
    destination.bind_metrics(destination.metrics)
    return destination


def track(user: str, n: int, event: str = "Bought", **properties: Any) -> dict:
    return {"type": "track", "event": event, "userId": user, "messageId": f"m{n}",
            "properties": {"n": n, **properties}}


def sent_numbers(server: ToyServer) -> list[list[int]]:
    return [[e["properties"]["n"] for e in r["json"]["events"]] for r in server.requests if r["path"] == "/v1/events"]


def kinds(outcome: Outcome, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


# --- Presets, batching, unmatched ------------------------------------------------------------------


async def test_presets_map_batch_and_send_with_the_vendor_headers(server, http):
    destination = build(server, http)
    outcome = await destination.send(envelopes([track("u1", i) for i in range(7)]))
    assert outcome.kind == "ok"
    assert sent_numbers(server) == [[0, 1, 2], [3, 4, 5], [6]]  # batch_size 3, in order
    request = server.requests[0]
    assert request["headers"]["X-Api-Key"] == "toy-key"
    assert request["json"]["events"][0] == {"name": "Bought", "user_id": "u1", "properties": {"n": 0},
                                            "message_id": "m0"}


async def test_an_action_without_batch_size_sends_one_event_per_request(server, http):
    pages = [{"type": "page", "userId": f"u{i}", "properties": {"url": f"https://x/{i}"}} for i in range(3)]
    assert (await build(server, http).send(envelopes(pages))).kind == "ok"
    assert sorted(r["json"]["url"] for r in server.requests) == ["https://x/0", "https://x/1", "https://x/2"]
    assert all(r["json"]["count"] == 1 for r in server.requests)  # a literal default


async def test_an_unmatched_event_is_skipped_counted_and_logged(server, http, caplog):
    destination = build(server, http)
    caplog.set_level(logging.WARNING, "collector.destinations.actions.destination")
    outcome = await destination.send(envelopes([{"type": "identify", "userId": "u"}] * 7 + [track("u", 1)]))
    assert kinds(outcome, 8) == ["skip"] * 7 + ["ok"]
    assert destination.metrics.unmatched_events.labels("toy")._value.get() == 7
    logged = [r for r in caplog.records if "no mapping matched" in r.getMessage()]
    assert len(logged) == 5  # the first few a minute, not every one
    assert "identify" in logged[0].getMessage()


async def test_a_batch_of_unmatched_events_is_skipped_without_a_request(server, http):
    outcome = await build(server, http).send(envelopes([{"type": "identify", "userId": "u"}]))
    assert outcome.kind == "skip" and server.requests == []


async def test_batch_keys_part_requests_and_hashed_fields_are_hashed_once(server, http):
    already = hashlib.sha256(b"c@example.com").hexdigest()
    events = [
        {"type": "track", "event": "Audience Entered", "userId": "u1",
         "properties": {"list_id": "L1"}, "context": {"traits": {"email": "  A@Example.COM "}}},
        {"type": "track", "event": "Audience Entered", "userId": "u2",
         "properties": {"list_id": "L2"}, "context": {"traits": {"email": "b@example.com"}}},
        {"type": "track", "event": "Audience Entered", "userId": "u3",
         "properties": {"list_id": "L1"}, "context": {"traits": {"email": already.upper()}}},
    ]
    assert (await build(server, http).send(envelopes(events))).kind == "ok"
    members = {r["path"]: r["json"]["members"] for r in server.requests}
    assert members == {
        "/v1/lists/L1/members": [hashlib.sha256(b"a@example.com").hexdigest(), already],
        "/v1/lists/L2/members": [hashlib.sha256(b"b@example.com").hexdigest()],
    }


# --- Per-event outcomes ----------------------------------------------------------------------------


async def test_the_vendors_answer_per_item_marks_those_events_only(server, http):
    events = [track("u1", 0), track("u2", 1, answer=400), track("u3", 2, answer=503)]
    outcome = await build(server, http).send(envelopes(events))
    assert outcome.kind == "mixed"
    ok, rejected, retried = outcome.per_event
    assert ok.kind == "ok"
    assert (rejected.kind, rejected.reason) == ("reject", "track (Track Calls): refused 400")
    assert (retried.kind, retried.reason) == ("retry", "track (Track Calls): refused 503")


async def test_an_invalid_payload_rejects_that_event_alone(server, http):
    no_number = track("u2", 9, value="lots")  # value is a number field
    outcome = await build(server, http).send(envelopes([track("u1", 0), no_number, track("u3", 2)]))
    assert kinds(outcome, 3) == ["ok", "reject", "ok"]
    assert "invalid payload" in outcome.per_event[1].reason and "value" in outcome.per_event[1].reason
    assert sent_numbers(server) == [[0, 2]]


async def test_an_exception_in_perform_retries_its_items_only(server, http):
    class Flaky(Toy):
        pass

    calls = []
    original = Flaky.actions[0].perform

    async def explode_on_page(ctx, items):
        calls.append(len(items))
        raise ConnectionResetError("peer reset")

    import dataclasses
    Flaky.actions = (Flaky.actions[0], Flaky.actions[1], dataclasses.replace(Toy.actions[2], perform=explode_on_page))
    events = [track("u1", 0), {"type": "page", "userId": "u2", "properties": {"url": "x"}}]
    outcome = await build(server, http, Flaky).send(envelopes(events))
    assert original is Toy.actions[0].perform
    assert kinds(outcome, 2) == ["ok", "retry"]
    assert outcome.per_event[1].reason == "page (Page Calls): ConnectionResetError: peer reset"
    assert calls == [1]


async def test_the_worst_action_decides_and_a_retry_repeats_only_the_failed_action(server, http):
    # Two subscriptions take every "Bought" event: the track preset and a mapping to page.
    destination = build(server, http, mappings=[{"name": "pages too", "action": "page", "trigger": 'event = "Bought"'}])
    server.script.append((503, {}, b"busy"))  # whichever request comes first fails
    outcome = await destination.send(envelopes([track("u1", 0)]))
    assert outcome.kind == "retry"
    first = [r["path"] for r in server.requests]
    assert sorted(first) == ["/v1/events", "/v1/page"]
    failed = first[0]
    server.requests.clear()
    assert (await destination.send(envelopes([track("u1", 0)]))).kind == "ok"
    assert [r["path"] for r in server.requests] == [failed]  # the action that took it is not repeated
    server.requests.clear()
    assert (await destination.send(envelopes([track("u1", 0)]))).kind == "ok"
    assert sorted(r["path"] for r in server.requests) == ["/v1/events", "/v1/page"]  # settled: forgotten


async def test_a_reject_outranks_a_retry(server, http):
    destination = build(server, http, mappings=[{"name": "pages too", "action": "page", "trigger": 'event = "Bought"'}])
    outcome = await destination.send(envelopes([track("u1", 0, answer=400)]))
    # The page request went through; the track was refused: the event is rejected.
    assert outcome.kind == "reject" and "refused 400" in outcome.reason


async def test_later_events_of_a_user_whose_event_will_be_retried_are_held_back(server, http):
    destination = build(server, http, parallel_requests=1)
    pages = [{"type": "page", "userId": user, "properties": {"url": f"{user}-{i}"}}
             for i, user in enumerate(["a", "b", "a", "b"])]
    server.script.append((503, {}, b"busy"))  # the first request: a's first page
    outcome = await destination.send(envelopes(pages))
    assert kinds(outcome, 4) == ["retry", "ok", "retry", "ok"]
    assert "held back" in outcome.per_event[2].reason
    assert [r["json"]["url"] for r in server.requests] == ["a-0", "b-1", "b-3"]


# --- Auth, pauses, limits, endpoint, secrets -----------------------------------------------------


class TokenSource:
    """Stands for OAuth2RefreshToken: hands out token-1, token-2 ... and counts invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.invalidated: list[str] = []
        self.current: str | None = None

    async def token(self, http: Any) -> str:
        if self.current is None:
            self.issued += 1
            self.current = f"token-{self.issued}"
        return self.current

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if token == self.current:
            self.current = None

    def sensitive_values(self) -> tuple[str, ...]:
        return tuple(f"token-{i}" for i in range(1, self.issued + 1))


class OAuthToy(Toy):
    source: TokenSource

    def token_source_for(self) -> TokenSource:
        return type(self).source


@pytest.fixture
def oauth_toy():
    OAuthToy.source = TokenSource()
    return OAuthToy


async def test_a_401_gets_a_new_token_and_one_more_try(server, http, oauth_toy):
    server.tokens = {"token-2"}  # the first token has expired at the vendor
    outcome = await build(server, http, oauth_toy).send(envelopes([track("u1", 0)]))
    assert outcome.kind == "ok"
    assert [r["headers"]["Authorization"] for r in server.requests] == ["Bearer token-1", "Bearer token-2"]
    assert oauth_toy.source.invalidated == ["token-1"]


async def test_a_401_after_a_new_token_is_a_retry_and_never_a_loop(server, http, oauth_toy):
    server.tokens = set()  # no token is accepted
    outcome = await build(server, http, oauth_toy).send(envelopes([track("u1", 0)]))
    assert outcome.kind == "retry" and "credentials refused" in outcome.reason
    assert len(server.requests) == 2
    assert "token-" not in outcome.reason


async def test_a_401_for_some_items_refreshes_once_and_resends_those_items(server, http, oauth_toy):
    server.tokens = {"token-1", "token-2"}
    outcome = await build(server, http, oauth_toy).send(
        envelopes([track("u1", 0), track("u2", 1, answer=401), track("u3", 2)]))
    # The item refused with 401 is sent again, once, with a new token; it is refused again.
    assert sent_numbers(server) == [[0, 1, 2], [1]]
    assert server.requests[1]["headers"]["Authorization"] == "Bearer token-2"
    assert oauth_toy.source.invalidated == ["token-1"]
    assert kinds(outcome, 3) == ["ok", "retry", "ok"]


async def test_a_429_pauses_every_request_of_the_destination(server, http):
    destination = build(server, http, parallel_requests=1)
    server.script.append((429, {"Retry-After": "30"}, b"slow down"))
    pages = [{"type": "page", "userId": f"u{i}", "properties": {"url": str(i)}} for i in range(4)]
    outcome = await destination.send(envelopes(pages))
    assert len(server.requests) == 1  # the others were not sent into the 429
    assert kinds(outcome, 4) == ["retry"] * 4
    assert outcome.retry_after == pytest.approx(30, abs=1)
    # Another batch (another lane) is held too, without a request.
    again = await destination.send(envelopes([pages[0]]))
    assert again.kind == "retry" and 29 <= again.retry_after <= 30
    assert len(server.requests) == 1


async def test_a_429_without_retry_after_pauses_for_the_initial_backoff(server, http):
    destination = build(server, http, retry={"initial_backoff": "7s"})
    server.script.append((429, {}, b""))
    outcome = await destination.send(envelopes([track("u1", 0)]))
    assert outcome.kind == "retry" and outcome.retry_after == 7
    assert 6 < destination.pause.remaining() <= 7


async def test_rate_limit_spaces_the_requests_of_every_lane(server, http):
    destination = build(server, http, rate_limit=1000)
    reservations: list[float] = []
    reserve = destination.bucket.reserve
    destination.bucket.reserve = lambda: reservations.append(reserve()) or reservations[-1]
    pages = [{"type": "page", "userId": f"u{i}", "properties": {"url": str(i)}} for i in range(5)]
    await asyncio.gather(destination.send(envelopes(pages[:3])), destination.send(envelopes(pages[3:])))
    assert len(reservations) == 5 == len(server.requests)  # one token per request, from one bucket


async def test_endpoint_replaces_scheme_host_and_port_only(server, http):
    destination = build(server, http, region="eu")
    assert destination.url("/v1/page") == f"{server.origin}/v1/page"
    assert destination.url("https://other.toy.example/v2/x?a=1") == f"{server.origin}/v2/x?a=1"
    without = Toy("toy", settings(server, endpoint=None, region="eu"), BuildContext(http, ""))
    assert without.url("/v1/page") == "https://eu.api.toy.example/v1/page"


@pytest.mark.parametrize("endpoint", ["ftp://x", "https://x/path", "https://x?q=1", "x.example.com",
                                      "https://user@x", "https://x:99999"])
def test_an_endpoint_with_a_path_or_no_scheme_is_refused(server, http, endpoint):
    with pytest.raises(SettingsError, match="endpoint"):
        Toy("toy", settings(server, endpoint=endpoint), BuildContext(http, ""))


def test_an_endpoint_with_a_trailing_slash_is_an_origin(server, http):
    destination = Toy("toy", settings(server, endpoint=server.origin + "/"), BuildContext(http, ""))
    assert destination.url("/v1/page") == f"{server.origin}/v1/page"


async def test_secrets_never_reach_a_reason(server, http):
    key = "sk-very-secret-1234"
    server.api_key = key
    server.script.append((400, {}, f"bad key {key} (x-api-key: {key})".encode()))
    outcome = await build(server, http, api_key=key).send(envelopes([track("u1", 0)]))
    assert outcome.kind == "reject"
    assert key not in outcome.reason and "***" in outcome.reason


# --- Mappings and presets --------------------------------------------------------------------------


def names(config: ToySettings) -> list[tuple[str, str]]:
    return [(s.name, s.action.name) for s in compiled_subscriptions(config)]


def test_presets_apply_by_default_and_mappings_add(server):
    config = settings(server, mappings=[{"action": "page", "trigger": 'type = "screen"'}])
    assert names(config) == [("Track Calls", "track"), ("Audience Entered", "add_to_list"),
                             ("Page Calls", "page"), ("mappings[0]", "page")]


def test_a_mapping_named_like_a_preset_replaces_it_and_lays_its_fields_over(server):
    config = settings(server, mappings=[{"name": "Track Calls", "fields": {"user_id": {"@path": "$.anonymousId"},
                                                                          "properties": None}}])
    subscriptions = compiled_subscriptions(config)
    assert [s.name for s in subscriptions] == ["Track Calls", "Audience Entered", "Page Calls"]
    payload = subscriptions[0].prepare({"type": "track", "event": "E", "userId": "u", "anonymousId": "a",
                                        "properties": {"x": 1}, "messageId": "m"})
    assert payload == {"name": "E", "user_id": "a", "message_id": "m"}  # properties removed, the rest kept
    assert subscriptions[0].trigger == Toy.presets[0].trigger


def test_presets_false_drops_them_and_a_list_keeps_some(server):
    assert names(settings(server, presets=False)) == []
    assert names(settings(server, presets=["Page Calls"])) == [("Page Calls", "page")]
    only = settings(server, presets=False, mappings=[{"name": "Page Calls", "trigger": 'type = "screen"'}])
    assert names(only) == [("Page Calls", "page")]


def test_a_disabled_mapping_switches_its_preset_off(server):
    config = settings(server, mappings=[{"name": "Audience Entered", "enabled": False}])
    assert names(config) == [("Track Calls", "track"), ("Page Calls", "page")]


def test_every_problem_in_the_mappings_is_reported(server):
    config = settings(server, presets=["Track Calls", "Pages"], mappings=[
        {"action": "trak", "trigger": 'type = "track"'},
        {"action": "page", "trigger": 'event == "A"'},
        {"action": "page", "trigger": 'type = "page"', "fields": {"urll": "x", "count": "many"}},
        {"name": "new one", "action": "page"},
        {"name": "dup", "action": "page", "trigger": "type = \"page\""},
        {"name": "dup", "action": "page", "trigger": "type = \"page\""},
    ])
    with pytest.raises(SettingsError) as caught:
        compiled_subscriptions(config)
    found = {(p.path, p.message.split(";")[0].split(":")[0]) for p in caught.value.problems}
    by_path = {p.path: p for p in caught.value.problems}
    assert "did you mean 'Page Calls'" in by_path[("presets", 1)].message
    assert "did you mean 'track'" in by_path[("mappings", 0, "action")].message
    assert by_path[("mappings", 1, "trigger")].column == 7
    assert "did you mean 'url'" in by_path[("mappings", 2, "fields", "urll")].message
    assert by_path[("mappings", 2, "fields", "urll")].at_key
    assert ("mappings", 2, "fields", "count") in by_path
    assert "needs trigger" in by_path[("mappings", 3)].message
    assert ("mappings", 5, "name") in by_path
    assert len(found) == 7


def test_settings_link_to_their_destination_class():
    assert ToySettings.destination is Toy
    assert issubclass(Toy.Config, ActionSettings)


def test_registry_and_config_union_take_action_destinations(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "toy", "tests.destinations.actions.toy.Toy")
    assert registry.destination_class("toy") is Toy
    union = registry.config_union()
    config = msgspec.convert({"type": "toy", "api_key": "k"}, union, strict=False, dec_hook=decode_hook)
    assert type(config) is ToySettings and isinstance(registry.destination_class("toy")("t", config, BuildContext(None, "")),
                                                       ActionDestination)


# --- End to end: config file -> loader -> dispatcher -> Toy API ------------------------------------


@pytest.fixture
async def event_log(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    yield log
    await log.close()


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_end_to_end_through_the_loader_and_the_dispatcher(server, http, event_log, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "toy", "tests.destinations.actions.toy.Toy")
    monkeypatch.setenv("TOY_API_KEY", "toy-key")
    config = load_config_text(textwrap.dedent(f"""\
        destinations:
          toy:
            type: toy
            api_key: ${{TOY_API_KEY}}
            endpoint: {server.origin}
            concurrency: 2
            batch: {{max_events: 10, max_wait: 10ms}}
            retry: {{initial_backoff: 10ms, max_backoff: 50ms}}
            filters:
              - if: event = "Debug"
                drop: true
              - drop_properties: {{properties: [secret]}}
            mappings:
              - name: Track Calls
                fields:
                  user_id: {{"@template": "user-{{{{userId}}}}"}}
        """), "e2e.yaml")
    settings_ = config.destinations["toy"]
    destination = registry.destination_class("toy")("toy", settings_, BuildContext(http, ""))
    assert destination.subscriptions is compiled_subscriptions(settings_)  # compiled once, at load
    dispatcher = Dispatcher(destination, event_log, Metrics())
    await dispatcher.start(await event_log.load_cursors())
    bodies = [
        track("u1", 0, secret="s"),
        track("u1", 1, answer=400),   # rejected by the vendor: dead-lettered with its reason
        track("u1", 2, answer=503),   # retried alone until the vendor takes it
        track("u2", 3, event="Debug"),  # dropped by a filter
        {"type": "identify", "userId": "u3", "messageId": "m4"},  # matched by nothing: passed
        track("u3", 5),
    ]
    now = int(time.time() * 1000)
    await event_log.append("web", [("web", f"id-{i}", now, msgspec.json.encode(b)) for i, b in enumerate(bodies)])

    def refused_2() -> bool:
        return any(e["properties"]["n"] == 2 for r in server.requests for e in (r["json"] or {}).get("events", []))

    await until(refused_2)
    server.ignore_answers = True  # the vendor recovers: event 2 goes through when retried
    await until(lambda: dispatcher.cursor == 6)
    await dispatcher.stop(1)
    delivered = [e for r in server.requests for e in (r["json"] or {}).get("events", [])]
    numbers = [e["properties"]["n"] for e in delivered]
    assert numbers.count(2) >= 2 and 3 not in numbers
    assert all("secret" not in e["properties"] for e in delivered)
    assert {e["user_id"] for e in delivered} == {"user-u1", "user-u3"}
    rows = await event_log._reader_conn.execute_fetchall("SELECT seq, reason FROM dead_letters")
    assert rows == [(2, "track (Track Calls): refused 400")]
    metrics = dispatcher.metrics
    assert metrics.filtered_events.labels("toy")._value.get() == 1
    assert metrics.unmatched_events.labels("toy")._value.get() == 1
    assert metrics.delivered_events.labels("toy")._value.get() == 3  # 0, 2 and 5


async def test_the_vendor_example_of_the_package_docstring_works(http, monkeypatch):
    """The example in collector/destinations/actions/__init__.py is the API vendors follow: it must run."""
    import sys
    import types

    import collector.destinations.actions as layer
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    code = textwrap.dedent(layer.__doc__.split("A minimal vendor::\n")[1].split("\nand one line in")[0])
    module = types.ModuleType("acme_example")
    monkeypatch.setitem(sys.modules, "acme_example", module)
    exec(compile(code, "acme_example", "exec"), module.__dict__)  # noqa: S102 -- our own docstring
    namespace = module.__dict__
    received = []

    async def batch(request):
        received.append((request.headers["Authorization"], await request.json()))
        return web.json_response({"results": [{"ok": True}, {"ok": False, "error": "no email"}]}, status=207)

    app = web.Application()
    app.router.add_post("/v1/batch", batch)
    vendor_server = TestServer(app)
    await vendor_server.start_server()
    try:
        settings_ = msgspec.convert({"type": "acme", "api_key": "k-1", "endpoint": f"http://127.0.0.1:{vendor_server.port}"},
                                    namespace["Settings"])
        acme = namespace["Acme"]("acme", settings_, BuildContext(http, ""))
        outcome = await acme.send(envelopes([track("u", 0), track("u", 1)]))
    finally:
        await vendor_server.close()
    assert received == [("Bearer k-1", {"events": [{"name": "Bought"}, {"name": "Bought"}]})]
    assert kinds(outcome, 2) == ["ok", "reject"] and outcome.per_event[1].reason == "track (Track Calls): no email"
