"""What the long chaos runs share: a counting destination that can go down and come back, the
collector's memory and files, and printing."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sqlite3
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.chaos.support import Loader, own_rss_kb, rss_kb  # noqa: E402
from tests.support.process import CollectorProcess, free_port  # noqa: E402

__all__ = ["CollectorProcess", "CountingReceiver", "Loader", "free_port", "own_rss_kb", "rss_kb", "files", "log_span",
           "say"]


class CountingReceiver:
    """A destination's server that keeps counts, not bodies, so that runs of millions of events fit
    in memory: deliveries, distinct messageIds (optional), duplicates, and order per user (each
    event's ``properties.n`` counts up per user; a first delivery lower than the user's highest so
    far is an order violation). ``down()`` closes the port (connection refused), ``up()`` reopens
    it at the same address."""

    def __init__(self, port: int | None = None, *, keep_ids: bool = True) -> None:
        self.port = port or free_port()
        self.keep_ids = keep_ids
        self.ids: set[str] = set()
        self.delivered = 0  # events in successful requests, duplicates included
        self.duplicates = 0
        self.order_violations = 0
        self.requests = 0
        self.different_bodies = 0  # a messageId delivered again with other content
        self._highest: dict[str, int] = {}
        self._digest: dict[str, int] = {}
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="receiver")
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def down(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def distinct(self) -> int:
        with self.lock:
            return len(self.ids)

    async def _start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        data = json.loads(body)
        events = data["batch"] if isinstance(data, dict) and "batch" in data else data
        with self.lock:
            self.requests += 1
            self.delivered += len(events)
            for event in events:
                message_id = event["messageId"]
                digest = hash(json.dumps(event.get("properties"), sort_keys=True))
                if self.keep_ids:
                    if message_id in self.ids:
                        self.duplicates += 1
                        if self._digest.get(message_id, digest) != digest:
                            self.different_bodies += 1
                        continue
                    self.ids.add(message_id)
                    self._digest[message_id] = digest
                user, n = event.get("userId"), event.get("properties", {}).get("n")
                if isinstance(n, int):
                    if n < self._highest.get(user, 0):
                        self.order_violations += 1
                    self._highest[user] = max(n, self._highest.get(user, 0))
        return web.json_response({"success": True})


def files(data_dir: Path) -> dict[str, int]:
    """Sizes of the collector's SQLite files."""
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(data_dir) / f"events.db{suffix}"
        sizes["db" + suffix.replace("-", "_")] = path.stat().st_size if path.exists() else 0
    return sizes


def log_span(data_dir: Path) -> tuple[int, int]:
    """(lowest, highest) seq still in the log, read-only: how many events retention has kept."""
    conn = sqlite3.connect(f"file:{Path(data_dir) / 'events.db'}?mode=ro", uri=True, timeout=30)
    try:
        low, high = conn.execute("SELECT min(seq), max(seq) FROM events").fetchone()
        return low or 0, high or 0
    finally:
        conn.close()


def say(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def statuses(loaders: list[Loader]) -> dict[int, int]:
    total: Counter[int] = Counter()
    for loader in loaders:
        total.update(loader.statuses)
    return dict(total)


def machine() -> str:
    cpus = os.cpu_count()
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    return f"{cpus} CPUs, {mem} MB RAM, Python {sys.version.split()[0]}"
