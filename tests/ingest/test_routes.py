"""The tracking API end to end, against the real collector process: every route, auth mode and bad
input of the issue, what ends up stored (a `file` destination is the archive we read), metrics,
dedup, and durability of an acknowledged event across SIGKILL."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from tests.support.process import CollectorProcess
from tests.support.receiver import Receiver

WEB, SERVER, OFF = "wk_web", "wk_server", "wk_off"
DEEP = "wk_deep"
SOURCES = {
    "web": {"write_key": WEB},
    "server": {"write_key": SERVER},
    "retired": {"write_key": OFF, "enabled": False},
    "deep": {"write_key": DEEP},  # deeply nested events, kept out of the archives the tests decode
}
ORIGIN = "https://shop.example.com"
KB = 1024
MAX_REQUEST = 500 * KB


def file_destination(path: Path, **extra: object) -> dict:
    return {"type": "file", "path": str(path), "batch": {"max_wait": 0.05}, **extra}


class Archive:
    """The JSON lines a `file` destination wrote."""

    def __init__(self, directory: Path) -> None:
        self.file = directory / "events.jsonl"
        self._read = 0
        self._events: list[dict] = []

    def lines(self) -> list[bytes]:
        """Every complete line, undecoded."""
        if not self.file.exists():
            return []
        data = self.file.read_bytes()
        return data[: data.rfind(b"\n") + 1].splitlines()

    def events(self) -> list[dict]:
        """Every complete line, decoded (read incrementally: the file only grows)."""
        if self.file.exists():
            with open(self.file, "rb") as f:
                f.seek(self._read)
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._events += [json.loads(line) for line in complete.splitlines() if line]
            self._read += len(complete)
        return list(self._events)

    def of(self, user: str) -> list[dict]:
        return [e for e in self.events() if user in (e.get("userId"), e.get("anonymousId"))]

    def wait(self, predicate: Callable[[list[dict]], bool], timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"the archive never matched; it holds {len(events)} events")
            time.sleep(0.02)

    def wait_user(self, user: str, count: int, timeout: float = 10.0) -> list[dict]:
        self.wait(lambda events: sum(user in (e.get("userId"), e.get("anonymousId")) for e in events) >= count, timeout)
        return self.of(user)


class Running:
    def __init__(self, process: CollectorProcess, archive: Archive, server_archive: Archive, deep_archive: Archive | None = None) -> None:
        self.process = process
        self.url = process.url
        self.archive = archive  # every source but "deep"
        self.server_archive = server_archive  # only the "server" source
        self.deep_archive = deep_archive  # only the "deep" source

    def post(self, path: str, body: dict | bytes, headers: dict | None = None, key: str | None = WEB) -> requests.Response:
        if isinstance(body, dict):
            if key is not None:
                body = {"writeKey": key, **body}
            body = json.dumps(body).encode()
        return requests.post(self.url + path, data=body, headers=headers or {}, timeout=15)

    def committed(self) -> float:
        return self.process.metric("collector_events_committed_total")

    def settle(self, user: str) -> list[dict]:
        """Send a good event for ``user`` and wait until it is stored: everything the collector
        accepted for that user before is then stored too (one user's events keep their order).
        Returns the user's events without the sentinel."""
        sentinel = f"sentinel-{uuid.uuid4().hex}"
        answer = self.post("/v1/track", {"userId": user, "event": "Sentinel", "messageId": sentinel})
        assert answer.status_code == 200, answer.text
        self.archive.wait(lambda events: any(e.get("messageId") == sentinel for e in events))
        return [e for e in self.archive.of(user) if e.get("messageId") != sentinel]

    def healthy(self) -> bool:
        return requests.get(self.url + "/healthz", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory = tmp_path_factory.mktemp("routes")
    config = {
        "sources": SOURCES,
        "destinations": {
            "archive": file_destination(directory / "archive", sources=["web", "server"]),
            "server_only": file_destination(directory / "server_only", sources=["server"]),
            "deep_only": file_destination(directory / "deep_only", sources=["deep"]),
        },
    }
    process = CollectorProcess(directory / "collector", config).start()
    try:
        yield Running(
            process, Archive(directory / "archive"), Archive(directory / "server_only"), Archive(directory / "deep_only")
        )
    finally:
        if process.alive:
            process.stop()


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:16]}"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def assert_error(answer: requests.Response, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_preflight(url: str) -> None:
    asked = requests.options(
        url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
        },
        timeout=5,
    )
    plain = requests.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}, timeout=5)
    for answer in (asked, plain):
        assert 200 <= answer.status_code < 300, answer.status_code
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in answer.headers
        methods = {m.strip().upper() for m in answer.headers["Access-Control-Allow-Methods"].split(",")}
        assert {"POST", "OPTIONS"} <= methods
        allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "x-retry-count", "content-type"} <= allowed, allowed


CALLS = {
    "track": {"event": "Product Viewed", "properties": {"sku": "A-1", "price": 9.5}},
    "identify": {"traits": {"email": "ann@example.com"}},
    "page": {"name": "Pricing", "category": "Docs", "properties": {"path": "/pricing"}},
    "screen": {"name": "Home", "properties": {"variant": "b"}},
    "group": {"groupId": "acme", "traits": {"plan": "enterprise"}},
    "alias": {"previousId": "anon-before"},
}
SINGLE_ROUTES = [(f"/v1/{name}", name) for name in CALLS] + [(f"/v1/{name[0]}", name) for name in CALLS]
BATCH_ROUTES = ["/v1/batch", "/v1/b", "/v1/import"]


def assert_enriched(event: dict, call_type: str, user: str) -> None:
    assert event["type"] == call_type
    assert event["userId"] == user
    for field, value in CALLS[call_type].items():
        assert event[field] == value
    assert "writeKey" not in event
    assert event["messageId"]
    assert event["context"]["ip"] == "127.0.0.1"
    received = datetime.fromisoformat(event["receivedAt"])
    assert abs(datetime.now(timezone.utc) - received) < timedelta(seconds=30)
    assert event["timestamp"] == event["receivedAt"]  # no client timestamp


# -- every route ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, call_type", SINGLE_ROUTES)
def test_single_event_routes(collector: Running, path: str, call_type: str) -> None:
    assert_preflight(collector.url + path)
    user = new_user()
    answer = collector.post(path, {"userId": user, **CALLS[call_type]}, headers={"Origin": ORIGIN})
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    [event] = collector.archive.wait_user(user, 1)
    assert_enriched(event, call_type, user)


@pytest.mark.parametrize("path", BATCH_ROUTES)
def test_batch_routes(collector: Running, path: str) -> None:
    assert_preflight(collector.url + path)
    user = new_user()
    batch = [{"type": call_type, "userId": user, **fields} for call_type, fields in CALLS.items()]
    answer = collector.post(path, {"batch": batch}, headers={"Origin": ORIGIN})
    assert (answer.status_code, answer.json()) == (200, {"success": True})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    events = collector.archive.wait_user(user, len(CALLS))
    assert [e["type"] for e in events] == list(CALLS)  # one user: stored and delivered in order
    for event in events:
        assert_enriched(event, event["type"], user)
    assert len({e["messageId"] for e in events}) == len(CALLS)


def test_the_browser_telemetry_route_is_accepted_and_not_stored(collector: Running) -> None:
    assert_preflight(collector.url + "/v1/m")
    before = collector.committed()
    body = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1, "tags": {"method": "track"}}]}
    answer = collector.post("/v1/m", body, key=None, headers={"Content-Type": "text/plain", "Origin": ORIGIN})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    collector.settle(new_user())
    assert collector.committed() == before + 1  # only the sentinel


def test_an_empty_batch_is_accepted_but_still_authenticated(collector: Running) -> None:
    before = collector.committed()
    assert (collector.post("/v1/batch", {"batch": []}).status_code, collector.committed()) == (200, before)
    assert_error(collector.post("/v1/batch", {"batch": []}, key="wk_unknown"), 401, "invalid_write_key")


def test_a_disallowed_method_stores_nothing(collector: Running) -> None:
    assert requests.get(collector.url + "/v1/track", timeout=5).status_code == 405


# -- auth -----------------------------------------------------------------------------------------


def test_auth_by_write_key_in_the_body(collector: Running) -> None:
    user = new_user()
    assert collector.post("/v1/track", {"userId": user, "event": "E"}, key=SERVER).status_code == 200
    assert collector.server_archive.wait_user(user, 1)[0]["event"] == "E"


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_auth_by_basic(collector: Running, path: str) -> None:
    user = new_user()
    event = {"type": "track", "userId": user, "event": "E"}
    body = event if path == "/v1/track" else {"batch": [event]}
    answer = collector.post(path, body, key=None, headers={"Authorization": basic(SERVER)})
    assert answer.status_code == 200, answer.text
    assert collector.server_archive.wait_user(user, 1)[0]["event"] == "E"


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_auth_by_bearer_and_write_key_in_the_body(collector: Running, path: str) -> None:
    user = new_user()
    event = {"type": "track", "userId": user, "event": "E"}
    body = event if path == "/v1/track" else {"batch": [event]}
    answer = collector.post(path, body, key=SERVER, headers={"Authorization": "Bearer eyJhbGciOi.e30.c2ln"})
    assert answer.status_code == 200, answer.text
    assert collector.server_archive.wait_user(user, 1)[0]["event"] == "E"
    assert "writeKey" not in collector.server_archive.of(user)[0]


def test_a_source_is_told_apart_by_its_key(collector: Running) -> None:
    user = new_user()
    assert collector.post("/v1/track", {"userId": user, "event": "From web"}, key=WEB).status_code == 200
    assert collector.post("/v1/track", {"userId": user, "event": "From server"}, key=SERVER).status_code == 200
    assert [e["event"] for e in collector.archive.wait_user(user, 2)] == ["From web", "From server"]
    collector.settle(user)
    assert [e["event"] for e in collector.server_archive.of(user)] == ["From server"]


AUTH_FAILURES = [
    ("no-key", None, {}, 401, "missing_write_key"),
    ("empty-key", "", {}, 401, "missing_write_key"),
    ("unknown-body-key", "wk_unknown", {}, 401, "invalid_write_key"),
    ("key-of-wrong-type", 42, {}, 401, "invalid_write_key"),
    ("unknown-basic", None, {"Authorization": basic("wk_unknown")}, 401, "invalid_write_key"),
    ("unknown-basic-good-body", WEB, {"Authorization": basic("wk_unknown")}, 401, "invalid_write_key"),
    ("bearer-without-body-key", None, {"Authorization": "Bearer tok"}, 401, "missing_write_key"),
    ("bearer-unknown-body-key", "wk_unknown", {"Authorization": "Bearer tok"}, 401, "invalid_write_key"),
    ("broken-basic", None, {"Authorization": "Basic %%%"}, 401, "invalid_authorization"),
    ("non-ascii-basic", WEB, {"Authorization": "Basic d2tfd2Vi\u00e9"}, 401, "invalid_authorization"),
    ("disabled-source", OFF, {}, 403, "source_disabled"),
]


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
@pytest.mark.parametrize("key, headers, status, code", [case[1:] for case in AUTH_FAILURES], ids=[c[0] for c in AUTH_FAILURES])
def test_refused_auth_stores_nothing(
    collector: Running, path: str, key: object, headers: dict, status: int, code: str
) -> None:
    user = new_user()
    event = {"type": "track", "userId": user, "event": "Should not be stored"}
    body = dict(event) if path == "/v1/track" else {"batch": [event]}
    if key is not None:
        body["writeKey"] = key
    before = collector.committed()
    answer = collector.post(path, body, key=None, headers={**headers, "Origin": ORIGIN})
    assert_error(answer, status, code)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"  # the browser can read why
    assert collector.settle(user) == []
    assert collector.committed() == before + 1  # only the sentinel


# -- body formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8", None])
@pytest.mark.parametrize("path", ["/v1/t", "/v1/b"])
def test_bodies_are_json_whatever_the_content_type(collector: Running, path: str, content_type: str | None) -> None:
    user = new_user()
    event = {"type": "track", "userId": user, "event": "Plain"}
    body = json.dumps({"writeKey": WEB, **(event if path == "/v1/t" else {"batch": [event]})}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    session = requests.Session()
    request = requests.Request("POST", collector.url + path, data=body, headers=headers).prepare()
    if content_type is None:
        request.headers.pop("Content-Type", None)
    assert session.send(request, timeout=10).status_code == 200
    assert collector.archive.wait_user(user, 1)[0]["event"] == "Plain"


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies(collector: Running, path: str, encoding: str) -> None:
    user = new_user()
    event = {"type": "track", "userId": user, "event": "Zipped"}
    body = json.dumps({"writeKey": WEB, **(event if path == "/v1/track" else {"batch": [event] * 1})}).encode()
    data = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    answer = collector.post(path, data, headers={"Content-Encoding": encoding})
    assert answer.status_code == 200, answer.text
    assert collector.archive.wait_user(user, 1)[0]["event"] == "Zipped"


# -- server fields ----------------------------------------------------------------------------------


def test_batch_context_integrations_and_sent_at_are_applied(collector: Running) -> None:
    user = new_user()
    now = datetime.now(timezone.utc)
    skew = timedelta(hours=3)  # the client's clock is 3 hours ahead
    client_time = lambda moment: (moment + skew).isoformat().replace("+00:00", "Z")  # noqa: E731
    body = {
        "sentAt": client_time(now),
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}, "locale": "en-US"},
        "integrations": {"Mixpanel": True, "Amplitude": True},
        "batch": [
            {"type": "track", "userId": user, "event": "First", "timestamp": client_time(now - timedelta(seconds=30)),
             "context": {"locale": "de-DE"}, "integrations": {"Amplitude": False}},
            {"type": "track", "userId": user, "event": "Second", "messageId": "keep-me-" + user,
             "timestamp": client_time(now - timedelta(seconds=10)), "sentAt": client_time(now - timedelta(seconds=8))},
            {"type": "identify", "userId": user, "context": {"ip": "198.51.100.23"}},
        ],
    }
    assert collector.post("/v1/batch", body).status_code == 200
    first, second, third = collector.archive.wait_user(user, 3)

    assert first["context"]["library"] == {"name": "analytics-python", "version": "2.3.4"}
    assert first["context"]["locale"] == "de-DE"
    assert first["integrations"] == {"Mixpanel": True, "Amplitude": False}
    assert second["context"]["locale"] == "en-US"
    assert second["integrations"] == {"Mixpanel": True, "Amplitude": True}

    for event, (offset, sent_offset) in ((first, (30, 0)), (second, (10, 8))):
        received = datetime.fromisoformat(event["receivedAt"])
        assert event["originalTimestamp"] == client_time(now - timedelta(seconds=offset))
        expected = received - timedelta(seconds=offset - sent_offset)
        assert abs(datetime.fromisoformat(event["timestamp"]) - expected) < timedelta(milliseconds=2)
    assert second["messageId"] == "keep-me-" + user
    assert first["messageId"] and first["messageId"] != second["messageId"]

    assert first["context"]["ip"] == second["context"]["ip"] == "127.0.0.1"
    assert third["context"]["ip"] == "198.51.100.23"
    assert third["timestamp"] == third["receivedAt"] and "originalTimestamp" not in third


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(collector: Running) -> None:
    user = new_user()
    answer = collector.post("/v1/track", {"userId": user, "event": "E"}, headers={"X-Forwarded-For": "203.0.113.50"})
    assert answer.status_code == 200
    assert collector.archive.wait_user(user, 1)[0]["context"]["ip"] == "127.0.0.1"


# -- bad input ----------------------------------------------------------------------------------------


def _json(**fields: object) -> Callable[[str], bytes]:
    return lambda user: json.dumps({"writeKey": WEB, "userId": user, **fields}).encode()


def _batch(items: Callable[[str], list], **fields: object) -> Callable[[str], bytes]:
    return lambda user: json.dumps({"writeKey": WEB, "batch": items(user), **fields}).encode()


def _nested(depth: int, key: str = WEB) -> Callable[[str], bytes]:
    return lambda user: (
        b'{"writeKey":"' + key.encode() + b'","userId":"' + user.encode() + b'","event":"E","properties":{"deep":'
        + b"[" * depth + b"]" * depth + b"}}"
    )


def _gzip_bomb(user: str) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(b'{"writeKey":"wk_web","userId":"' + user.encode() + b'","event":"E","properties":{"p":"')
    zeros = bytes(1 << 20)
    return head + b"".join(compressor.compress(zeros) for _ in range(8)) + compressor.flush()  # 8 MiB


def _valid(user: str) -> dict:
    return {"type": "track", "userId": user, "event": "E"}


BAD_INPUTS = [
    # (id, path, body(user), headers, status, code)
    ("malformed-json", "/v1/track", lambda u: b'{"writeKey":"wk_web","userId":"' + u.encode() + b'","event":', {}, 400, "invalid_json"),
    ("json-not-an-object", "/v1/track", lambda u: json.dumps([{"writeKey": WEB, "userId": u}]).encode(), {}, 400, "invalid_body"),
    ("empty-body", "/v1/track", lambda u: b"", {}, 400, "invalid_json"),
    ("invalid-utf8", "/v1/track", lambda u: b'{"writeKey":"wk_web","userId":"' + u.encode() + b'","event":"caf\xe9"}', {}, 400, "invalid_utf8"),
    ("absurd-nesting", "/v1/track", _nested(200_000), {}, 400, "nesting_too_deep"),
    ("absurd-nesting-gzip", "/v1/track", lambda u: gzip.compress(_nested(240_000)(u)), {"Content-Encoding": "gzip"}, 400, "nesting_too_deep"),
    ("userId-object", "/v1/track", _json(userId={"id": 1}, event="E"), {}, 400, "invalid_field"),
    ("no-identity", "/v1/identify", lambda u: json.dumps({"writeKey": WEB, "traits": {"u": u}}).encode(), {}, 400, "missing_identity"),
    ("track-without-event", "/v1/t", _json(properties={"a": 1}), {}, 400, "missing_event"),
    ("track-event-number", "/v1/track", _json(event=12), {}, 400, "missing_event"),
    ("properties-array", "/v1/track", _json(event="E", properties=[1, 2]), {}, 400, "invalid_field"),
    ("traits-string", "/v1/identify", _json(traits="vip"), {}, 400, "invalid_field"),
    ("context-number", "/v1/page", _json(context=5), {}, 400, "invalid_field"),
    ("integrations-array", "/v1/screen", _json(integrations=["All"]), {}, 400, "invalid_field"),
    ("page-name-number", "/v1/p", _json(name=404), {}, 400, "invalid_field"),
    ("group-without-groupId", "/v1/g", _json(traits={}), {}, 400, "missing_groupId"),
    ("alias-without-previousId", "/v1/a", _json(), {}, 400, "missing_previousId"),
    ("messageId-too-long", "/v1/track", _json(event="E", messageId="m" * 101), {}, 400, "invalid_field"),
    ("timestamp-not-a-date", "/v1/track", _json(event="E", timestamp="last tuesday"), {}, 400, "invalid_timestamp"),
    ("timestamp-out-of-range", "/v1/track", _json(event="E", timestamp="0001-01-01T00:00:00+01:00"), {}, 400, "invalid_timestamp"),
    ("skew-out-of-range", "/v1/track", _json(event="E", timestamp="0001-01-01T00:00:00Z", sentAt="9999-12-31T23:59:59Z"), {}, 400, "invalid_timestamp"),
    ("event-over-32KB", "/v1/track", _json(event="E", properties={"blob": "x" * 40 * KB}), {}, 400, "event_too_large"),
    ("request-over-500KB", "/v1/batch", lambda u: _batch(lambda u: [_valid(u)])(u) + b" " * MAX_REQUEST, {}, 413, "request_too_large"),
    ("over-2500-events", "/v1/batch", _batch(lambda u: [_valid(u)] * 2501), {}, 400, "batch_too_large"),
    ("gzip-bomb", "/v1/track", _gzip_bomb, {"Content-Encoding": "gzip"}, 413, "request_too_large"),
    ("truncated-gzip", "/v1/track", lambda u: gzip.compress(_json(event="E")(u))[:-6], {"Content-Encoding": "gzip"}, 400, "invalid_encoding"),
    ("unknown-encoding", "/v1/track", _json(event="E"), {"Content-Encoding": "br"}, 415, "unsupported_encoding"),
    ("batch-not-an-array", "/v1/batch", lambda u: json.dumps({"writeKey": WEB, "batch": _valid(u)}).encode(), {}, 400, "invalid_batch"),
    ("batch-missing", "/v1/b", _json(event="E"), {}, 400, "invalid_batch"),
    ("batch-all-invalid", "/v1/batch", _batch(lambda u: [{"type": "track", "userId": u}, {"type": "nope", "userId": u}]), {}, 400, "missing_event"),
    ("batch-context-array", "/v1/batch", _batch(lambda u: [_valid(u)], context=[1]), {}, 400, "invalid_field"),
    ("batch-integrations-string", "/v1/import", _batch(lambda u: [_valid(u)], integrations="All"), {}, 400, "invalid_field"),
    ("batch-sentAt-invalid", "/v1/batch", _batch(lambda u: [_valid(u)], sentAt="tomorrow"), {}, 400, "invalid_timestamp"),
]


@pytest.mark.parametrize(
    "path, make_body, headers, status, code", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_refused_and_nothing_is_stored(
    collector: Running, path: str, make_body: Callable[[str], bytes], headers: dict, status: int, code: str
) -> None:
    user = new_user()
    before = collector.committed()
    answer = collector.post(path, make_body(user), headers={**headers, "Origin": ORIGIN})
    assert_error(answer, status, code)
    assert answer.headers.get("Access-Control-Allow-Origin") == "*"
    assert collector.healthy()
    assert collector.settle(user) == []  # a good event after it is still stored; the bad one is not
    assert collector.committed() == before + 1


def test_a_chunked_request_over_500KB_is_413(collector: Running) -> None:
    user = new_user()
    head = json.dumps({"writeKey": WEB, "batch": [_valid(user)]}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        yield head
        for _ in range(MAX_REQUEST // (64 * KB) + 2):
            yield b" " * (64 * KB)

    assert_error(requests.post(collector.url + "/v1/batch", data=chunks(), timeout=15), 413, "request_too_large")
    assert collector.healthy()
    assert collector.settle(user) == []


def test_the_connection_stays_usable_after_a_refused_body(collector: Running) -> None:
    user = new_user()
    with requests.Session() as session:  # keep-alive: the unread rest of a refused body must not leak into the next request
        for data, headers, status in [
            (b"[" + b" " * (MAX_REQUEST + 10) + b"]", {}, 413),
            (_gzip_bomb(user), {"Content-Encoding": "gzip"}, 413),
            (b'{"writeKey":"wk_web","userId":"' + user.encode() + b'","event":', {}, 400),
        ]:
            assert session.post(collector.url + "/v1/track", data=data, headers=headers, timeout=10).status_code == status
            good = {"writeKey": WEB, "userId": user, "event": f"After {status}"}
            assert session.post(collector.url + "/v1/track", json=good, timeout=10).status_code == 200
    assert [e["event"] for e in collector.archive.wait_user(user, 3)] == ["After 413", "After 413", "After 400"]


def test_limits_are_inclusive(collector: Running) -> None:
    user = new_user()
    # exactly 500 KB: 20 events of about 24 KB, padded with JSON whitespace
    items = [{"type": "track", "userId": user, "event": f"Big {i}", "properties": {"blob": "x" * (24 * KB)}} for i in range(20)]
    body = json.dumps({"writeKey": WEB, "batch": items}).encode()
    assert len(body) < MAX_REQUEST
    answer = collector.post("/v1/batch", body + b" " * (MAX_REQUEST - len(body)))
    assert answer.status_code == 200, answer.text
    # exactly 2,500 events
    many = new_user()
    answer = collector.post("/v1/batch", {"batch": [{"type": "track", "userId": many, "event": "Many"}] * 2500})
    assert answer.status_code == 200, answer.text
    assert len(collector.archive.wait_user(user, 20)) == 20
    assert len(collector.archive.wait_user(many, 2500)) == 2500


def test_nesting_near_the_decoders_limit_is_never_a_server_error(collector: Running) -> None:
    user = new_user()
    statuses = {}
    for depth in range(800, 1100, 6):
        answer = collector.post("/v1/track", _nested(depth, DEEP)(user))
        statuses[depth] = answer.status_code
        if answer.status_code != 200:
            assert_error(answer, 400, "nesting_too_deep")
    assert 200 in statuses.values() and 400 in statuses.values(), statuses  # the sweep spans the limit
    accepted = sum(status == 200 for status in statuses.values())
    # what was accepted is delivered too (counted, not decoded: too deep for the test's own stack)
    assert collector.deep_archive is not None
    mine = lambda: [line for line in collector.deep_archive.lines() if f'"userId":"{user}"'.encode() in line]  # noqa: E731
    deadline = time.monotonic() + 10
    while len(mine()) < accepted and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(mine()) == accepted
    assert collector.healthy()


def test_one_invalid_event_does_not_sink_the_batch(collector: Running) -> None:
    user = new_user()
    reasons = ["missing_event", "invalid_type", "invalid_event", "invalid_timestamp", "missing_identity", "event_too_large"]
    before = {reason: collector.process.metric("collector_events_rejected_total", source="web", reason=reason) for reason in reasons}
    batch = [
        {"type": "track", "userId": user, "event": "Good 1"},
        {"type": "track", "userId": user},  # missing_event
        {"type": "track", "userId": user, "event": "Good 2", "properties": {"n": 2}},
        {"type": ["track"], "userId": user, "event": "E"},  # invalid_type (a list)
        {"type": {"t": 1}, "userId": user, "event": "E"},  # invalid_type (an object)
        "not an event",  # invalid_event
        {"type": "track", "userId": user, "event": "E", "timestamp": "0001-01-01T00:00:00+05:00"},  # invalid_timestamp
        {"type": "identify", "traits": {"x": 1}},  # missing_identity
        {"type": "track", "userId": user, "event": "Huge", "properties": {"blob": "x" * 40 * KB}},  # event_too_large
        {"type": "identify", "userId": user, "traits": {"plan": "pro"}},
    ]
    answer = collector.post("/v1/batch", {"batch": batch})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert [(r["index"], r["code"]) for r in body.get("rejected", [])] == [
        (1, "missing_event"), (3, "invalid_type"), (4, "invalid_type"), (5, "invalid_event"),
        (6, "invalid_timestamp"), (7, "missing_identity"), (8, "event_too_large"),
    ]
    stored = collector.archive.wait_user(user, 3)
    assert [(e["type"], e.get("event")) for e in stored] == [("track", "Good 1"), ("track", "Good 2"), ("identify", None)]
    after = {reason: collector.process.metric("collector_events_rejected_total", source="web", reason=reason) for reason in reasons}
    assert {reason: after[reason] - before[reason] for reason in reasons} == {
        "missing_event": 1, "invalid_type": 2, "invalid_event": 1, "invalid_timestamp": 1, "missing_identity": 1,
        "event_too_large": 1,
    }
    assert collector.settle(user) == stored


def test_a_rejected_single_event_is_counted(collector: Running) -> None:
    before = collector.process.metric("collector_events_rejected_total", source="web", reason="missing_groupId")
    assert_error(collector.post("/v1/group", {"userId": new_user()}), 400, "missing_groupId")
    assert collector.process.metric("collector_events_rejected_total", source="web", reason="missing_groupId") == before + 1


# -- dedup ----------------------------------------------------------------------------------------------


def test_the_same_message_id_twice_from_a_source_is_stored_once(collector: Running) -> None:
    user, message_id = new_user(), f"dup-{uuid.uuid4()}"
    before = collector.process.metric("collector_events_deduplicated_total", source="web")
    for event in ("First", "Second"):
        answer = collector.post("/v1/track", {"userId": user, "event": event, "messageId": message_id})
        assert answer.status_code == 200
    assert [e["event"] for e in collector.settle(user)] == ["First"]
    assert collector.process.metric("collector_events_deduplicated_total", source="web") == before + 1


def test_the_same_message_id_twice_in_one_batch_is_stored_once(collector: Running) -> None:
    user, message_id = new_user(), f"dup-{uuid.uuid4()}"
    event = {"type": "track", "userId": user, "event": "Twice", "messageId": message_id}
    before = collector.process.metric("collector_events_deduplicated_total", source="web")
    assert collector.post("/v1/batch", {"batch": [event, event]}).status_code == 200
    assert len(collector.settle(user)) == 1
    assert collector.process.metric("collector_events_deduplicated_total", source="web") == before + 1


def test_the_same_message_id_from_two_sources_is_stored_twice(collector: Running) -> None:
    user, message_id = new_user(), f"dup-{uuid.uuid4()}"
    for key in (WEB, SERVER):
        assert collector.post("/v1/track", {"userId": user, "event": key, "messageId": message_id}, key=key).status_code == 200
    assert sorted(e["event"] for e in collector.archive.wait_user(user, 2)) == sorted([WEB, SERVER])
    assert [e["event"] for e in collector.server_archive.wait_user(user, 1)] == [SERVER]


def test_past_dedup_max_ids_the_window_in_force_is_shortened_and_said(tmp_path: Path) -> None:
    config = {"sources": SOURCES, "storage": {"dedup_max_ids": 100}}
    process = CollectorProcess(tmp_path / "collector", config).start()
    try:
        for _ in range(4):  # the dedup index is committed (and checked against its cap) about once a second
            batch = [{"type": "track", "userId": new_user(), "event": "E"} for _ in range(100)]
            assert requests.post(process.url + "/v1/batch", json={"batch": batch}, auth=(WEB, ""), timeout=5).status_code == 200
            time.sleep(0.6)
        assert process.metric("collector_dedup_window_seconds") < 60
        assert "more than storage.dedup_max_ids (100)" in process.logs()
    finally:
        process.stop()


def test_dedup_survives_a_restart(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    config = {"sources": SOURCES, "destinations": {"archive": file_destination(tmp_path / "archive")}}
    process = CollectorProcess(tmp_path / "collector", config).start()
    try:
        running = Running(process, archive, archive)
        user, message_id = new_user(), f"dup-{uuid.uuid4()}"
        assert running.post("/v1/track", {"userId": user, "event": "Before", "messageId": message_id}).status_code == 200
        archive.wait_user(user, 1)
        assert process.stop() == 0
        process.start()
        # Read back at start (the destinations' cursors were written since: a commit reported it).
        assert process.metric("collector_dedup_ids") == 1
        assert process.metric("collector_dedup_window_seconds") == 86400  # the whole window: under the cap
        answer = running.post("/v1/batch", {"batch": [{"type": "track", "userId": user, "event": "After", "messageId": message_id}]})
        assert answer.status_code == 200
        assert [e["event"] for e in running.settle(user)] == ["Before"]
        assert process.metric("collector_events_deduplicated_total", source="web") == 1
    finally:
        if process.alive:
            process.stop()


# -- durability --------------------------------------------------------------------------------------------


def test_an_acknowledged_event_survives_sigkill(tmp_path: Path) -> None:
    with Receiver() as receiver:
        receiver.script(*([503] * 10_000))  # nothing can be delivered before the kill
        config = {
            "sources": SOURCES,
            "destinations": {
                "hook": {"type": "webhook", "url": receiver.url + "/hook", "batch": {"max_wait": 0.05},
                         "retry": {"initial_backoff": 0.05, "max_backoff": 0.2}},
            },
        }
        process = CollectorProcess(tmp_path / "collector", config).start()
        try:
            user = new_user()

            def send(i: int) -> str:
                message_id = f"kill-{user}-{i}"
                event = {"type": "track", "userId": f"{user}-{i % 4}", "event": "Acked", "messageId": message_id}
                body = event if i % 2 else {"batch": [event]}
                answer = requests.post(process.url + ("/v1/track" if i % 2 else "/v1/batch"),
                                       json={"writeKey": WEB, **body}, timeout=15)
                assert answer.status_code == 200, answer.text
                return message_id

            with ThreadPoolExecutor(8) as pool:
                acknowledged = set(pool.map(send, range(40)))
            process.kill()  # right after the last 200
            assert not receiver.successful()
            receiver.answers.clear()
            process.start()
            delivered = {e["messageId"] for e in receiver.wait_for(len(acknowledged), timeout=20)}
            assert acknowledged <= delivered
        finally:
            if process.alive:
                process.stop()


# -- trusted proxies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
@pytest.mark.parametrize(
    "key, status, code",
    [("wk_nobody", 401, "invalid_write_key"), (OFF, 403, "source_disabled"), (WEB, 400, "invalid_encoding")],
)
def test_a_header_write_key_is_checked_before_the_body_is_read(
    collector: Running, path: str, key: str, status: int, code: str
) -> None:
    """A body that is not gzip at all: only a known, enabled key gets as far as decompressing it."""
    answer = requests.post(collector.url + path, data=b"not gzip" * 100, timeout=5,
                           headers={"Authorization": basic(key), "Content-Encoding": "gzip"})
    assert_error(answer, status, code)


def _raw_post(url: str, path: str, body: bytes, headers: list[tuple[str, str]]) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("POST", path)
        for name, value in [*headers, ("Content-Length", str(len(body)))]:
            connection.putheader(name, value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A collector behind a reverse proxy on 127.0.0.1, serving one site's origin only, with a
    dedup window of one second."""
    directory = tmp_path_factory.mktemp("proxied")
    config = {
        "server": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"], "cors": {"allowed_origins": [ORIGIN]}},
        "storage": {"dedup_window": "1s"},
        "sources": SOURCES,
        "destinations": {"archive": file_destination(directory / "archive")},
    }
    process = CollectorProcess(directory / "collector", config).start()
    archive = Archive(directory / "archive")
    try:
        yield Running(process, archive, archive)
    finally:
        if process.alive:
            process.stop()


@pytest.mark.parametrize(
    "headers, client_ip, expected",
    [
        ([("X-Forwarded-For", "203.0.113.7")], None, "203.0.113.7"),
        ([("X-Forwarded-For", "6.6.6.6, 203.0.113.8, 10.1.1.1")], None, "203.0.113.8"),
        # a proxy that adds its own header line (HAProxy): the client's first line is not believed
        ([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")], None, "203.0.113.9"),
        ([("X-Forwarded-For", "10.2.3.4, 10.0.0.9")], None, "10.2.3.4"),  # every hop ours: the leftmost
        ([("X-Forwarded-For", "203.0.113.10")], "198.51.100.1", "198.51.100.1"),  # the client's own context.ip
        ([], None, "127.0.0.1"),
    ],
    ids=["one-hop", "rightmost-untrusted", "two-header-lines", "all-trusted", "client-ip-kept", "no-header"],
)
def test_x_forwarded_for_from_a_trusted_proxy(
    behind_proxy: Running, headers: list[tuple[str, str]], client_ip: str | None, expected: str
) -> None:
    user = new_user()
    event: dict = {"writeKey": WEB, "userId": user, "event": "Proxied"}
    if client_ip:
        event["context"] = {"ip": client_ip}
    assert _raw_post(behind_proxy.url, "/v1/track", json.dumps(event).encode(), headers) == 200
    assert behind_proxy.archive.wait_user(user, 1)[0]["context"]["ip"] == expected


def test_cors_answers_only_the_allowed_origins(behind_proxy: Running) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = requests.options(behind_proxy.url + "/v1/t", headers={"Origin": ORIGIN, **preflight}, timeout=5)
    assert allowed.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "Access-Control-Allow-Credentials" not in allowed.headers  # the server cookie is off
    other = requests.options(behind_proxy.url + "/v1/t", headers={"Origin": "https://evil.example", **preflight}, timeout=5)
    assert "Access-Control-Allow-Origin" not in other.headers
    user = new_user()
    answer = behind_proxy.post("/v1/t", {"userId": user, "event": "E"}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in answer.headers


@pytest.mark.parametrize("cookie", [True, False])
def test_credentials_only_with_the_cookie_on_and_only_for_listed_origins(tmp_path: Path, cookie: bool) -> None:
    config = {
        "server": {"cors": {"allowed_origins": [ORIGIN, "*"]}},
        "browser": {"cookie": {"enabled": cookie}},
        "sources": SOURCES,
    }
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    with CollectorProcess(tmp_path / "collector", config) as process:
        for method in ("OPTIONS", "POST"):
            body = json.dumps({"writeKey": WEB, "userId": "u", "event": "E"}) if method == "POST" else None
            listed = requests.request(method, process.url + "/v1/t", data=body, timeout=5,
                                      headers={"Origin": ORIGIN, **preflight})
            other = requests.request(method, process.url + "/v1/t", data=body, timeout=5,
                                     headers={"Origin": "https://evil.example", **preflight})
            assert listed.status_code < 300 and other.status_code < 300
            assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert listed.headers.get("Access-Control-Allow-Credentials") == ("true" if cookie else None)
            assert other.headers["Access-Control-Allow-Origin"] == "*"
            assert "Access-Control-Allow-Credentials" not in other.headers


def test_dedup_holds_only_within_its_window(behind_proxy: Running) -> None:
    user, message_id = new_user(), f"dup-{uuid.uuid4()}"
    send = lambda event: behind_proxy.post("/v1/track", {"userId": user, "event": event, "messageId": message_id})  # noqa: E731
    assert send("First").status_code == 200
    assert send("Repeat").status_code == 200
    time.sleep(1.2)
    assert send("After the window").status_code == 200
    assert [e["event"] for e in behind_proxy.settle(user)] == ["First", "After the window"]


# -- health and metrics ----------------------------------------------------------------------------------


def test_health_readiness_and_metrics(collector: Running) -> None:
    health = requests.get(collector.url + "/healthz", timeout=5)
    assert health.status_code == 200
    ready = requests.get(collector.url + "/readyz", timeout=5)
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    user = new_user()
    received = collector.process.metric("collector_events_received_total", source="web")
    assert collector.post("/v1/track", {"userId": user, "event": "Counted"}).status_code == 200
    metrics = requests.get(collector.url + "/metrics", timeout=5)
    assert metrics.status_code == 200
    for name in ("collector_events_received", "collector_events_rejected", "collector_events_committed",
                 "collector_events_deduplicated", "collector_commit_seconds", "collector_http_requests",
                 "collector_http_request_seconds", "collector_dedup_ids"):
        assert name in metrics.text, name
    assert collector.process.metric("collector_events_received_total", source="web") == received + 1
    assert collector.process.metric("collector_http_requests_total", route="track", status="200") >= 1
