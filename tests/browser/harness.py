"""Helpers of the browser tests: the collector as a real process, the site serving test pages,
Segment's official snippet from npm, and small waits."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
OFFICIAL_UMD = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd"
SNIPPET_PACKAGE = NODE_MODULES / "@segment" / "snippet"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WRITE_KEY = "wk_web"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Segment's official code, from npm


def ensure_npm_packages() -> None:
    if (OFFICIAL_UMD / "standalone.js").is_file() and (SNIPPET_PACKAGE / "lib" / "index.js").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install @segment/analytics-next for these tests (apt-get install npm)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE, check=True, timeout=600,
    )


_snippets: dict[str, str] = {}


def official_snippet(collector_origin: str, write_key: str = WRITE_KEY, **options: Any) -> str:
    """Segment's snippet exactly as @segment/snippet renders it for ``host`` = the collector.
    The one change: the collector here is plain http, and the snippet always writes https."""
    ensure_npm_packages()
    host = collector_origin.split("://", 1)[1]
    args = json.dumps({"apiKey": write_key, "host": host, **options})
    if args not in _snippets:
        text = subprocess.run(
            ["node", "-e", "process.stdout.write(require('@segment/snippet').min(JSON.parse(process.argv[1])))", args],
            cwd=HERE, check=True, capture_output=True, text=True, timeout=60,
        ).stdout
        assert f'"https://{host}' in text, text
        _snippets[args] = text.replace(f'"https://{host}', f'"http://{host}')
    return _snippets[args]


# ---------------------------------------------------------------------------------------------
# The collector, as a real process


class CollectorProcess:
    """``python -m collector run --config <file>`` with a file destination to read events from."""

    def __init__(
        self, directory: Path, browser: dict | None = None, server: dict | None = None, host: str = "127.0.0.1"
    ) -> None:
        """``host``: the name pages use for the collector (its ``server.public_url``)."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.origin = f"http://{host}:{self.port}"
        if host != "127.0.0.1":
            server = {"public_url": self.origin, **(server or {})}
        self.archive = self.dir / "archive"
        self.config_path = self.dir / "collector.yaml"
        self.log_path = self.dir / "collector.log"
        config: dict[str, Any] = {
            "server": {"listen": f"127.0.0.1:{self.port}", "shutdown_timeout": "2s", **(server or {})},
            "storage": {"path": str(self.dir / "data"), "sync": "normal"},
            "logging": {"level": "warning"},
            "sources": {"website": {"write_key": WRITE_KEY}},
            "destinations": {"archive": {"type": "file", "path": str(self.archive), "fsync": False,
                                         "batch": {"max_wait": 0.05}}},
        }
        if browser is not None:
            config["browser"] = browser
        self.config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 20) -> None:
        log = open(self.log_path, "ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collector", "run", "--config", str(self.config_path),
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    break
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/analytics.js/v1/{WRITE_KEY}/analytics.min.js") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        await self.stop()
        raise RuntimeError(f"the collector did not start:\n{self.log_path.read_text()[-3000:]}")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    def events(self) -> list[dict]:
        path = self.archive / "events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    async def wait_for(
        self, predicate: Callable[[list[dict]], bool], timeout: float = 15, what: str = "events"
    ) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; delivered: {json.dumps(events, indent=1)[-4000:]}")
            await asyncio.sleep(0.1)

    async def events_of(self, anonymous_id: str, count: int, timeout: float = 15) -> list[dict]:
        """The events of one browser (anonymousId), once at least ``count`` have arrived."""
        events = await self.wait_for(
            lambda evs: len([e for e in evs if e.get("anonymousId") == anonymous_id]) >= count,
            timeout, f"{count} events of {anonymous_id}",
        )
        return [e for e in events if e.get("anonymousId") == anonymous_id]



# ---------------------------------------------------------------------------------------------
# The site: a second origin serving test pages


class Site:
    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.pages: dict[str, str] = {}
        self._count = 0
        self._runner: web.AppRunner | None = None

    def add(self, html: str, query: str = "") -> str:
        """Serves ``html`` at a fresh path; returns its URL (with ``query``)."""
        self._count += 1
        path = f"/page{self._count}"
        self.pages[path] = html
        return f"{self.origin}{path}{query}"

    async def _serve(self, request: web.Request) -> web.Response:
        html = self.pages.get(request.path)
        if html is None:
            return web.Response(status=404, text="no such page")
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()



def page_html(head: str, body: str = "", title: str = "Test page") -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>\n{head}\n</head>"
        f"<body>{body}</body></html>"
    )


class SentOrder:
    """The order in which a page sent its events to /v1/b. Destinations keep the order of one
    user's events only (events of different userIds travel in parallel lanes), so tests compare
    the browser's order by putting delivered events back into it."""

    def __init__(self, page) -> None:
        self.message_ids: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request) -> None:
        if request.method == "POST" and request.url.endswith("/v1/b") and request.post_data:
            for event in json.loads(request.post_data).get("batch", []):
                if event.get("messageId") not in self.message_ids:
                    self.message_ids.append(event.get("messageId"))

    def sort(self, events: list[dict]) -> list[dict]:
        position = {m: i for i, m in enumerate(self.message_ids)}
        return sorted(events, key=lambda e: position.get(e.get("messageId"), len(position)))


async def wait_loaded(page, key: str = "analytics") -> None:
    await page.wait_for_function(f"window['{key}'] && window['{key}'].initialized === true", timeout=10000)
