"""Local fakes of each destination's vendor, realistic stored events to send them, and build helpers.

``FAKES`` maps every destination type to its fake; test_contract.py fails for a registered type
missing here. A fake is used as ``async with FakeClass(tmp_path) as fake``. It:

- ``point(example)``: returns the destination's example config aimed at the fake;
- checks each request as the vendor would as it arrives, and answers 400 naming what is wrong;
- ``assert_delivered(envelopes)``: asserts it received exactly one request carrying exactly them;
- ``answer(status, headers, body)`` (HTTP fakes): the next request gets this answer instead;
- ``error_cases``: the vendor's error answers with the Outcome each must produce.
"""

from __future__ import annotations

import abc
import base64
import contextlib
import copy
import gzip
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, ClassVar

import aiohttp
import msgspec
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from collector.config.units import decode_hook
from collector.destinations.base import BuildContext, Destination, Envelope, RoutingFields
from collector.destinations.registry import config_union, destination_class

# ---------------------------------------------------------------- events, as the log stores them


def stored_events() -> list[dict[str, Any]]:
    """A track with properties, an identify with traits and a page, after ingestion (clock fixed,
    receivedAt added); a fresh copy each call."""
    browser = {
        "library": {"name": "analytics.js", "version": "npm:next-1.84.0"},
        "ip": "203.0.113.7",
        "locale": "de-DE",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/131.0 Safari/537.36",
        "page": {
            "path": "/checkout/complete",
            "referrer": "https://shop.example.com/cart",
            "title": "Bestellung abgeschlossen – Shop",
            "url": "https://shop.example.com/checkout/complete?utm_source=newsletter",
        },
        "consent": {"categoryPreferences": {"analytics": True, "advertising": False}},
    }
    return [
        {
            "type": "track",
            "event": "Order Completed",
            "properties": {
                "order_id": "50314b8e9bcf000000000000",
                "total": 27.5,
                "revenue": 25.0,
                "currency": "EUR",
                "coupon": None,
                "products": [
                    {"product_id": "507f1f77bcf86cd799439011", "sku": "45790-32",
                     "name": "Monopoly: 3rd Edition", "price": 19, "quantity": 1},
                    {"product_id": "505bd76785ebb509fc183733", "sku": "46493-32",
                     "name": "Uno Card Game", "price": 3.25, "quantity": 2},
                ],
            },
            "userId": "user-4711",
            "anonymousId": "507f191e-810c-4197-9db3-0c1d0b1b2b3f",
            "messageId": "ajs-next-1732800360123-3c2b2c4a-6f1e-4b9a-9a53-0f6f2f1d7c11",
            "timestamp": "2024-11-28T13:26:00.123Z",
            "originalTimestamp": "2024-11-28T13:26:00.100Z",
            "sentAt": "2024-11-28T13:26:00.350Z",
            "receivedAt": "2024-11-28T13:26:00.373Z",
            "context": browser,
            "integrations": {"All": True, "Mixpanel": False},
            "writeKey": "wk_browser_5kXn2pQ",
        },
        {
            "type": "identify",
            "userId": "user-4711",
            "anonymousId": None,
            "traits": {"email": "zoë.müller@example.com", "name": "Zoë Müller", "plan": "pro", "logins": 12,
                       "address": {"city": "Köln", "country": "DE"}, "createdAt": "2023-02-01T09:30:00Z"},
            "messageId": "1b0f4f0e-4c8a-4c65-9d32-2a9f1f0b8e7d",
            "timestamp": "2024-11-28T13:26:01.000Z",
            "receivedAt": "2024-11-28T13:26:01.012Z",
            "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
            "integrations": {},
        },
        {
            "type": "page",
            "name": "Checkout Complete",
            "category": "Checkout",
            "properties": {"path": "/checkout/complete", "title": "Bestellung abgeschlossen – Shop",
                           "url": "https://shop.example.com/checkout/complete?utm_source=newsletter"},
            "userId": None,
            "anonymousId": "507f191e-810c-4197-9db3-0c1d0b1b2b3f",
            "messageId": "ajs-next-1732800361456-9e8d7c6b-5a49-4382-b1c0-d9e8f7a6b5c4",
            "timestamp": "2024-11-28T13:26:01.456Z",
            "originalTimestamp": "2024-11-28T13:26:01.440Z",
            "sentAt": "2024-11-28T13:26:01.700Z",
            "receivedAt": "2024-11-28T13:26:01.716Z",
            "context": browser,
            "integrations": {},
        },
    ]


def envelopes(events: list[dict[str, Any]] | None = None, source: str = "web") -> list[Envelope]:
    """The events as the delivery engine hands them to a destination."""
    result = []
    for seq, event in enumerate(stored_events() if events is None else events, start=1):
        raw = msgspec.json.encode(event)
        received_at = datetime.fromisoformat(event.get("receivedAt", "2024-11-28T13:26:00Z"))
        received_ms = int(received_at.timestamp() * 1000)
        result.append(Envelope(seq, source, received_ms, raw, msgspec.json.decode(raw, type=RoutingFields)))
    return result


# ---------------------------------------------------------------- building destinations


@contextlib.asynccontextmanager
async def client_session() -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    """An HTTP session like the one the app lends, and the URLs of every request it starts."""
    started: list[str] = []

    async def on_request_start(session: Any, ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        started.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session, started


def parse(settings: dict[str, Any]) -> Any:
    """Decode destination settings as the config loader does: into the union of every type."""
    return msgspec.convert(settings, type=config_union(), strict=False, dec_hook=decode_hook)


def build(settings: dict[str, Any], http: aiohttp.ClientSession | None, data_dir: Path) -> Destination:
    config = parse(settings)
    cls = destination_class(settings["type"])
    return cls(f"test-{settings['type']}", config, BuildContext(http, str(data_dir)))


@contextlib.asynccontextmanager
async def started(destination: Destination) -> AsyncIterator[Destination]:
    await destination.start()
    try:
        yield destination
    finally:
        await destination.close()


# ---------------------------------------------------------------- fakes


@dataclass(frozen=True)
class ErrorCase:
    """A vendor error (``arrange`` sets it up on a started fake) and the Outcome it must produce."""

    name: str
    arrange: Callable[[Any], None]
    kind: str
    retry_after: float | None = None
    reason: str = ""  # a part of Outcome.reason


class Fake(abc.ABC):
    error_cases: ClassVar[list[ErrorCase]]

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    @abc.abstractmethod
    def point(self, example: dict[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    def assert_delivered(self, batch: list[Envelope]) -> None: ...


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: Any
    wire: bytes  # the body as sent, compressed or not
    body: bytes  # the body decompressed


def answering(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Callable[[Any], None]:
    return lambda fake: fake.answer(status, headers or {}, body)


class HttpFake(Fake):
    """An aiohttp server on 127.0.0.1 that records every request and answers like the vendor."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.received: list[Received] = []
        self.problems: list[str] = []
        self._answers: list[tuple[int, dict[str, str], bytes]] = []

    async def __aenter__(self) -> Any:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        # Keep the body as it came over the wire: the fake checks compression itself.
        await self.server.start_server(auto_decompress=False)
        self.url = str(self.server.make_url("/")).rstrip("/")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()

    def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self._answers.append((status, headers, body))

    async def _handle(self, request: web.Request) -> web.Response:
        wire = await request.read()
        body, problems = wire, []
        if request.headers.get("Content-Encoding") == "gzip":
            try:
                body = gzip.decompress(wire)
            except OSError as e:
                problems.append(f"Content-Encoding: gzip but the body is not gzip: {e}")
        received = Received(request.method, request.path, request.query_string, request.headers, wire, body)
        self.received.append(received)
        problems += self.check(received) if not problems else []
        if problems:
            self.problems += problems
            return web.json_response(
                {"success": False, "code": "invalid_request", "message": "; ".join(problems)}, status=400)
        if self._answers:
            status, headers, answer = self._answers.pop(0)
            return web.Response(status=status, headers=headers, body=answer)
        return self.ok()

    @abc.abstractmethod
    def check(self, r: Received) -> list[str]:
        """What the vendor would refuse in this request (protocol, auth, shape); [] if nothing."""

    def ok(self) -> web.Response:
        return web.json_response({"success": True})

    def the_request(self) -> Received:
        assert not self.problems, self.problems
        assert len(self.received) == 1, f"expected one request, got {len(self.received)}"
        return self.received[0]


def _expect(problems: list[str], what: str, got: object, want: object) -> None:
    if got != want:
        problems.append(f"{what}: expected {want!r}, got {got!r}")


class SegmentFake(HttpFake):
    """Segment's HTTP Tracking API, /v1/batch."""

    write_key = "wk_fake_Segment_0123"
    gzip = False

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        settings = {**copy.deepcopy(example), "endpoint": self.url, "write_key": self.write_key}
        self.gzip = settings.get("gzip", False)
        return settings

    def check(self, r: Received) -> list[str]:
        problems: list[str] = []
        token = base64.b64encode(f"{self.write_key}:".encode()).decode()
        _expect(problems, "method", r.method, "POST")
        _expect(problems, "path", r.path, "/v1/batch")
        _expect(problems, "query", r.query, "")
        _expect(problems, "Authorization", r.headers.get("Authorization"), f"Basic {token}")
        _expect(problems, "Content-Type", r.headers.get("Content-Type"), "application/json")
        _expect(problems, "Content-Encoding", r.headers.get("Content-Encoding"),
                "gzip" if self.gzip else None)
        if len(r.body) > 500_000:
            problems.append(f"batch of {len(r.body)} bytes is over Segment's 500 KB")
        try:
            payload = json.loads(r.body)
        except ValueError as e:
            return problems + [f"invalid JSON: {e}"]
        if (not isinstance(payload, dict) or not isinstance(payload.get("batch"), list)
                or not payload["batch"]):
            return problems + ["body must be {\"batch\": [...non-empty...], ...}"]
        if len(payload["batch"]) > 2500:
            problems.append(f"{len(payload['batch'])} events is over Segment's 2,500 per batch")
        try:
            sent_at = datetime.strptime(str(payload.get("sentAt")), "%Y-%m-%dT%H:%M:%S.%fZ")
            sent_at = sent_at.replace(tzinfo=timezone.utc)
            if len(payload["sentAt"]) != 24 or abs(time.time() - sent_at.timestamp()) > 10:
                problems.append(f"sentAt {payload['sentAt']!r} is not now as YYYY-MM-DDTHH:MM:SS.mmmZ")
        except ValueError:
            problems.append(f"sentAt {payload.get('sentAt')!r} is not an ISO-8601 UTC time")
        for i, item in enumerate(payload["batch"]):
            if item.get("type") not in ("track", "identify", "page", "screen", "group", "alias"):
                problems.append(f"batch[{i}]: no valid type")
            if not (item.get("userId") or item.get("anonymousId")):
                problems.append(f"batch[{i}]: needs userId or anonymousId")
            if "sentAt" in item and item["sentAt"] != payload.get("sentAt"):
                # Segment would compute timestamp = receivedAt - (sentAt - timestamp) with a stale sentAt.
                problems.append(f"batch[{i}]: stale sentAt {item['sentAt']!r} would skew its timestamp")
        return problems

    def assert_delivered(self, batch: list[Envelope]) -> None:
        payload = json.loads(self.the_request().body)
        want = []
        for e in batch:
            event = msgspec.json.decode(e.raw)
            event.pop("writeKey", None)  # this collector's source key is no business of the vendor
            if "sentAt" in event:
                event["sentAt"] = payload["sentAt"]
            want.append(event)
        assert payload["batch"] == want
        assert set(payload) == {"batch", "sentAt"}

    error_cases = [
        ErrorCase("400 invalid", answering(400, {}, b'{"success":false,"code":"invalid_request"}'),
                  "reject", None, 'HTTP 400: {"success":false'),
        ErrorCase("401 write key", answering(401, {}, b'{"success":false,"code":"unauthorized"}'), "retry",
                  reason="HTTP 401"),
        ErrorCase("429 retry-after", answering(429, {"Retry-After": "7"}), "retry", 7.0, "HTTP 429"),
        ErrorCase("503 retry-after", answering(503, {"Retry-After": "120"}, b"busy"), "retry", 120.0,
                  "HTTP 503: busy"),
        ErrorCase("500", answering(500, {}, b"oops"), "retry", None, "HTTP 500"),
        ErrorCase("308 not followed", answering(308, {"Location": "/v1/batch"}), "reject", None, "HTTP 308"),
    ]


class WebhookFake(HttpFake):
    """Any HTTP receiver, as the webhook destination's documentation describes it."""

    path = "/hooks/collector"
    token = "hook-token-1f2e3d"
    secret = "hook-signing-secret-9a8b7c"

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        settings = copy.deepcopy(example)
        settings["url"] = self.url + self.path
        if "Authorization" in settings.get("headers", {}):
            settings["headers"]["Authorization"] = f"Bearer {self.token}"
        if settings.get("signing_secret"):
            settings["signing_secret"] = self.secret
        self.settings = settings
        return settings

    def check(self, r: Received) -> list[str]:
        s, problems = self.settings, []
        fmt = s.get("format", "json")
        _expect(problems, "method", r.method, s.get("method", "POST"))
        _expect(problems, "path", r.path, self.path)
        _expect(problems, "query", r.query, "")
        headers = CIMultiDict({"Content-Type": "application/x-ndjson" if fmt == "ndjson" else "application/json"})
        headers.update(s.get("headers", {}))
        for name, value in headers.items():
            _expect(problems, name, r.headers.getall(name, None), [value])
        _expect(problems, "Content-Encoding", r.headers.get("Content-Encoding"),
                "gzip" if s.get("gzip") else None)
        header = s.get("signature_header", "X-Signature")
        if s.get("signing_secret"):
            mac = hmac.new(self.secret.encode(), r.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(r.headers.get(header, ""), f"sha256={mac}"):
                problems.append(f"{header} {r.headers.get(header)!r} does not sign the body")
        elif header in r.headers:
            problems.append(f"unexpected {header} without a signing secret")
        try:
            lines = r.body.split(b"\n")
            if fmt == "ndjson":
                if lines[-1] != b"":
                    problems.append("ndjson body must end with a newline")
                [json.loads(line) for line in lines[:-1]]
            elif not isinstance(json.loads(r.body), list):
                problems.append("json body must be an array")
        except ValueError as e:
            problems.append(f"invalid JSON: {e}")
        return problems

    def assert_delivered(self, batch: list[Envelope]) -> None:
        body = self.the_request().body
        if self.settings.get("format") == "ndjson":
            assert body == b"".join(e.raw + b"\n" for e in batch)
        else:
            assert body == b"[" + b",".join(e.raw for e in batch) + b"]"

    error_cases = [
        ErrorCase("404", answering(404, {}, b"no such hook"), "reject", None, "HTTP 404: no such hook"),
        ErrorCase("413", answering(413), "reject", None, "HTTP 413"),
        ErrorCase("302 not followed", answering(302, {"Location": "/elsewhere"}), "reject", None, "HTTP 302"),
        ErrorCase("408", answering(408), "retry", None, "HTTP 408"),
        ErrorCase("429 retry-after", answering(429, {"Retry-After": "30"}), "retry", 30.0, "HTTP 429"),
        ErrorCase("502", answering(502, {}, b"bad gateway"), "retry", None, "HTTP 502: bad gateway"),
    ]


def _path_is_a_file(fake: FileFake) -> None:
    fake.directory.write_text("not a directory\n")


def _disk_full(fake: FileFake) -> None:
    fake.directory.mkdir()  # /dev/full (Linux) answers every write with ENOSPC
    (fake.directory / "events.jsonl").symlink_to("/dev/full")


class FileFake(Fake):
    """The filesystem: a directory under the test's tmp_path."""

    @property
    def directory(self) -> Path:
        return self.tmp_path / "export"

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "path": str(self.directory), "prefix": "events"}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        assert sorted(p.name for p in self.directory.iterdir()) == ["events.jsonl"]
        data = (self.directory / "events.jsonl").read_bytes()
        assert data == b"".join(e.raw + b"\n" for e in batch)
        assert [json.loads(line) for line in data.splitlines()] == [msgspec.json.decode(e.raw) for e in batch]

    error_cases = [
        ErrorCase("path is a file", _path_is_a_file, "retry", None, "export"),
        ErrorCase("disk full", _disk_full, "retry", None, "No space left on device"),
    ]


FAKES: dict[str, type[Fake]] = {
    "segment": SegmentFake,
    "webhook": WebhookFake,
    "file": FileFake,
}


def _vendor_fakes() -> dict[str, type[Fake]]:
    """A vendor destination keeps its fake beside its tests: ``ContractFake`` in
    ``tests/destinations/<type>/fake.py`` (built on the vendor's double in tests/vendors/)."""
    import importlib
    import pkgutil

    found = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.ispkg:
            name = f"tests.destinations.{module.name}.fake"
            try:
                fake_module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                if error.name != name:
                    raise
                continue
            found[module.name] = fake_module.ContractFake
    return found


FAKES.update(_vendor_fakes())
