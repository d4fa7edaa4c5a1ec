"""The recording HTTP server every vendor double is built on.

A double binds 127.0.0.1 on a free port, checks each request as the vendor documents, answers as
the vendor answers, records every request in ``requests`` and keeps what the vendor would have
ingested in ``accepted`` (in the vendor's own terms). ``fail_next`` scripts answers ahead of the
checks (429 with Retry-After, 500, 401...).

A vendor double subclasses ``VendorDouble`` and returns its routes from ``routes()``; a route's
handler receives the decoded ``Recorded`` request and returns an ``Answer``:

    class MyDouble(VendorDouble):
        def routes(self):
            return [("POST", "/v1/events", self._events)]

        def _events(self, call: Recorded) -> Answer:
            ...
            return Answer(200, {"ok": True})

Async tests use ``async with MyDouble() as double``; tests whose sender runs elsewhere (another
process, a sync SDK) use ``with ThreadedDouble(MyDouble()) as double``, which runs the server on
its own thread and event loop and delegates every other attribute to the double.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict

# The server accepts far more than any vendor does, so that each double answers "too large" itself.
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass
class Answer:
    """What a double answers. ``body``: bytes or str are sent as they are, None sends nothing,
    anything else is sent as JSON."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass
class Recorded:
    """One request as it arrived, decoded once, with the answer it got."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # case-insensitive copy
    host: str  # the Host header the sender used
    body: bytes  # as sent (still gzipped if it was)
    decoded: bytes  # after Content-Encoding; b"" if that failed (see decode_error)
    decode_error: str | None  # why the Content-Encoding could not be undone
    json: Any  # the decoded JSON body, or None (see json_error)
    json_error: str | None  # why the body is not JSON (None when ``json`` holds it)
    form: dict[str, str] | None  # the fields of an application/x-www-form-urlencoded body
    params: dict[str, str]  # the route's path parameters, e.g. {"cid": "123"}
    at: float = field(default_factory=time.time)
    status: int = 0  # what the double answered
    answer: Any = None  # the answer body as the double built it (before JSON encoding)
    scripted: bool = False  # answered by fail_next(), not by the vendor's checks


Handler = Callable[[Recorded], Answer]
Route = tuple[str, str, Handler]  # (method, aiohttp path pattern, handler)


@dataclass
class _Scripted:
    status: int
    body: Any
    headers: dict[str, str]
    path: str | None


class VendorDouble:
    """Base class of the vendor doubles (see the module docstring)."""

    vendor = "vendor"

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Recorded] = []
        self.accepted: list[Any] = []
        self.delay = 0.0  # seconds to wait before answering each request
        self._scripted: list[_Scripted] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None

    # -- to be provided by each vendor

    def routes(self) -> Sequence[Route]:
        raise NotImplementedError

    def failure_body(self, status: int, call: Recorded) -> Any:
        """The body of a scripted answer given without one: the vendor's own, where documented."""
        return {"error": f"scripted {status}"}

    # -- lifecycle

    async def start(self) -> VendorDouble:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        for method, pattern, handler in self.routes():
            app.router.add_route(method, pattern, self._serving(handler))
        app.router.add_route("*", "/{tail:.*}", self._serving(self._unrouted, scriptable=False))
        # auto_decompress=False: the double sees the body as sent and undoes gzip itself.
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> VendorDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- scripting and inspection

    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        *,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` routed requests (only those to ``path``, if given) with this,
        before and instead of the vendor's checks; nothing of them is accepted. ``body=None``
        gives the vendor's documented body for that status."""
        with self._lock:
            for _ in range(times):
                self._scripted.append(_Scripted(status, body, dict(headers or {}), path))

    def answered(self, status: int) -> list[Recorded]:
        """The recorded requests that got this status."""
        return [call for call in list(self.requests) if call.status == status]

    def reset(self) -> None:
        """Forget what was recorded and scripted (subclasses clear their own stores too)."""
        with self._lock:
            self._scripted.clear()
        self.requests.clear()
        self.accepted.clear()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Poll ``predicate`` until it returns something truthy, and return that; fail after
        ``timeout`` seconds, saying what was recorded."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout))
            await asyncio.sleep(0.02)

    async def wait_for_accepted(self, count: int, timeout: float = 10.0) -> list[Any]:
        """Wait until at least ``count`` items are accepted; returns a copy of ``accepted``."""
        await self.wait_for(lambda: len(self.accepted) >= count, timeout, f"{count} accepted")
        return list(self.accepted)

    def _timeout_message(self, what: str, timeout: float) -> str:
        calls = list(self.requests)
        seen = ", ".join(f"{c.method} {c.path} -> {c.status}" for c in calls[-10:]) or "no requests"
        return (
            f"{self.vendor} double: timed out after {timeout}s waiting for {what or 'condition'}; "
            f"{len(self.accepted)} accepted, {len(calls)} requests (last: {seen})"
        )

    # -- serving

    def _serving(self, handler: Handler, scriptable: bool = True) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.StreamResponse:
            call = await _record(request)
            if self.delay:
                await asyncio.sleep(self.delay)
            scripted = self._take_scripted(call.path) if scriptable else None
            if scripted is not None:
                body = scripted.body if scripted.body is not None else self.failure_body(scripted.status, call)
                answer = Answer(scripted.status, body, scripted.headers)
                call.scripted = True
            else:
                answer = handler(call)
            call.status, call.answer = answer.status, answer.body
            self.requests.append(call)
            return _response(answer)

        return serve

    def _take_scripted(self, path: str) -> _Scripted | None:
        with self._lock:
            for index, scripted in enumerate(self._scripted):
                if scripted.path is None or scripted.path == path:
                    return self._scripted.pop(index)
        return None

    def _unrouted(self, call: Recorded) -> Answer:
        return Answer(404, {"error": f"{self.vendor} double has no route {call.method} {call.path}"})


async def _record(request: web.Request) -> Recorded:
    body = await request.read()
    decoded, decode_error = _undo_encoding(body, request.headers.get("Content-Encoding", ""))
    content_type = request.content_type
    form = None
    parsed: Any = None
    json_error: str | None = None
    if decode_error:
        json_error = decode_error
    elif content_type == "application/x-www-form-urlencoded":
        form = dict(parse_qsl(decoded.decode("utf-8", "replace"), keep_blank_values=True))
        json_error = "form-encoded body"
    elif not decoded:
        json_error = "empty body"
    else:
        try:
            parsed = json.loads(decoded)
        except ValueError as error:  # UnicodeDecodeError is a ValueError too
            json_error = f"not JSON: {error}"
    return Recorded(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=CIMultiDict(request.headers),
        host=request.headers.get("Host", ""),
        body=body,
        decoded=decoded,
        decode_error=decode_error,
        json=parsed,
        json_error=json_error,
        form=form,
        params=dict(request.match_info),
    )


def _undo_encoding(body: bytes, encoding: str) -> tuple[bytes, str | None]:
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return gzip.decompress(body), None
        if encoding == "deflate":
            return zlib.decompress(body), None
    except (OSError, EOFError, zlib.error) as error:
        return b"", f"invalid {encoding} body: {error}"
    if encoding in ("", "identity"):
        return body, None
    return b"", f"unsupported Content-Encoding {encoding!r}"


def _response(answer: Answer) -> web.Response:
    body = answer.body
    if body is None:
        return web.Response(status=answer.status, headers=answer.headers, content_type=answer.content_type)
    if isinstance(body, (bytes, str)):
        data = body.encode() if isinstance(body, str) else body
        content_type = answer.content_type or "text/plain"
    else:
        data = json.dumps(body).encode()
        content_type = answer.content_type or "application/json"
    return web.Response(status=answer.status, body=data, headers=answer.headers, content_type=content_type)


D = TypeVar("D", bound=VendorDouble)


class ThreadedDouble(Generic[D]):
    """Runs a double on its own thread and event loop, for synchronous tests whose sender is
    elsewhere. Every attribute not defined here is the double's (``url``, ``accepted``,
    ``fail_next``...); ``wait_for`` and ``wait_for_accepted`` here are blocking."""

    def __init__(self, double: D) -> None:
        self.double = double
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{double.vendor}-double", daemon=True)

    def start(self) -> ThreadedDouble[D]:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.double.start(), self._loop).result(10)
        return self

    def close(self) -> None:
        if not self._thread.is_alive():  # never started, or already closed
            self._loop.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(self.double.close(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> ThreadedDouble[D]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.double, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # ``double.delay = 1`` must reach the double, not stop at the wrapper.
        if name in ("double", "_loop", "_thread"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.double, name, value)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(self.double._timeout_message(what, timeout))
            time.sleep(0.02)

    def wait_for_accepted(self, count: int, timeout: float = 10.0) -> list[Any]:
        self.wait_for(lambda: len(self.double.accepted) >= count, timeout, f"{count} accepted")
        return list(self.double.accepted)
