"""A local HTTP receiver standing in for a destination's server: it records every request and
answers from a script (e.g. 503, then 429 with Retry-After, then 200s)."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = field(default_factory=time.monotonic)

    def json(self) -> object:
        body = self.body
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)


class Receiver:
    """Runs on its own thread and event loop, so synchronous tests (and SDKs) can use it too."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: deque[tuple[int, dict[str, str]]] = deque()
        self.delay = 0.0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    def start(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *answers: tuple[int, dict[str, str]] | int) -> None:
        """Answer the next requests with these statuses (then 200)."""
        for answer in answers:
            self.answers.append(answer if isinstance(answer, tuple) else (answer, {}))

    def successful(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status < 300]

    def events(self) -> list[dict]:
        """Every event in every successful request, in arrival order, whatever the body shape
        (a Segment batch, a JSON array, NDJSON)."""
        events: list[dict] = []
        for request in self.successful():
            body = request.body
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if request.headers.get("Content-Type", "").startswith("application/x-ndjson"):
                events += [json.loads(line) for line in body.splitlines() if line.strip()]
                continue
            data = json.loads(body)
            events += data["batch"] if isinstance(data, dict) and "batch" in data else data
        return events

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.05)
        raise AssertionError(f"expected {count} events, received {len(self.events())}")

    def stop(self) -> None:
        # Close the server and its open connections first, so that no handler task is left
        # pending (and reported as destroyed) when the loop goes away.
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)  # bodies as sent
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers = self.answers.popleft() if self.answers else (200, {})
        with self._lock:
            self.requests.append(Received(request.method, request.path, dict(request.headers), body, status))
        return web.json_response({"success": status < 300}, status=status, headers=headers)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
