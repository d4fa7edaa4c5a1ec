"""A receiver for delivery measurements: counts the events it is sent and answers 200 at once.

Accepts what the collector's destinations send: a JSON array (webhook), NDJSON (webhook), or
{"batch": [...]} (segment), gzipped or not, on any path. GET /stats returns the counts and the
CLOCK_MONOTONIC times of the first request and of the latest one, so that a harness in another
process can time a drain.

    python -m benchmarks.sink --port 9100
"""

from __future__ import annotations

import argparse
import time
import zlib

import msgspec
import uvloop
from aiohttp import web


class _SegmentBatch(msgspec.Struct):
    batch: list[msgspec.Raw]


# msgspec.Raw: count the items without building them.
_array = msgspec.json.Decoder(list[msgspec.Raw])
_segment = msgspec.json.Decoder(_SegmentBatch)


def count_events(body: bytes) -> int:
    if body[:2] == b"\x1f\x8b":
        body = zlib.decompress(body, wbits=31)
    head = body.lstrip()[:1]
    if head == b"[":
        return len(_array.decode(body))
    if head == b"{":
        try:
            return len(_segment.decode(body).batch)
        except msgspec.DecodeError:
            pass  # an object without "batch": NDJSON
    return sum(1 for line in body.splitlines() if line.strip())


class Stats:
    def __init__(self) -> None:
        self.events = 0
        self.requests = 0
        self.bytes = 0
        self.by_path: dict[str, int] = {}
        self.first = None  # monotonic time the first request arrived
        self.last = None  # monotonic time the latest request was counted

    def as_dict(self) -> dict:
        return {
            "events": self.events, "requests": self.requests, "bytes": self.bytes,
            "by_path": self.by_path, "first": self.first, "last": self.last, "now": time.monotonic(),
        }


def make_app() -> web.Application:
    stats = Stats()

    async def receive(request: web.Request) -> web.Response:
        if stats.first is None:
            stats.first = time.monotonic()
        body = await request.read()
        n = count_events(body)
        stats.events += n
        stats.requests += 1
        stats.bytes += len(body)
        stats.by_path[request.path] = stats.by_path.get(request.path, 0) + n
        stats.last = time.monotonic()
        return web.Response(body=b'{"success":true}', content_type="application/json")

    async def get_stats(_: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(stats.as_dict()), content_type="application/json")

    async def reset(_: web.Request) -> web.Response:
        stats.__init__()
        return web.Response(body=b"{}", content_type="application/json")

    # aiohttp inflates Content-Encoding: gzip bodies itself; the size cap applies after that.
    app = web.Application(client_max_size=64 * 1024**2)
    app.router.add_get("/stats", get_stats)
    app.router.add_get("/readyz", get_stats)
    app.router.add_post("/reset", reset)
    app.router.add_post("/{path:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(make_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
