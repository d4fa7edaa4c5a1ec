"""A receiver for delivery measurements: counts the events it is sent and answers at once.

Accepts what the collector's destinations send: a JSON array (webhook, Mixpanel), NDJSON (webhook),
an object whose events are under "batch" (segment, PostHog), "events" (GA4, Amplitude), "data"
(Meta) or "conversions" (Google Ads), or a form with a JSON "data" field; gzipped or not, on any
path. The vendors' paths are answered the way each vendor answers success (and POST .../token
with an access token), so that vendor destinations can be measured against it. GET /stats returns
the counts and the CLOCK_MONOTONIC times of the first request and of the latest one, so that a
harness in another process can time a drain.

    python -m benchmarks.sink --port 9100
"""

from __future__ import annotations

import argparse
import time
import urllib.parse
import zlib

import msgspec
import uvloop
from aiohttp import web


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw] | None = None
    events: list[msgspec.Raw] | None = None
    data: list[msgspec.Raw] | None = None
    conversions: list[msgspec.Raw] | None = None


# msgspec.Raw: count the items without building them.
_array = msgspec.json.Decoder(list[msgspec.Raw])
_object = msgspec.json.Decoder(_Batch)


def count_events(body: bytes) -> int:
    if body[:2] == b"\x1f\x8b":
        body = zlib.decompress(body, wbits=31)
    if body.startswith(b"data="):  # a form: Mixpanel's /engage and /groups
        body = urllib.parse.unquote_plus(body.split(b"&", 1)[0][5:].decode()).encode()
    head = body.lstrip()[:1]
    if head == b"[":
        return len(_array.decode(body))
    if head == b"{":
        try:
            found = _object.decode(body)
        except msgspec.DecodeError:
            found = None  # NDJSON
        if found is not None:
            items = found.batch or found.events or found.data or found.conversions
            return len(items) if items is not None else 1
    return sum(1 for line in body.splitlines() if line.strip())


def vendor_answer(path: str, events: int) -> web.Response:
    """Success as each vendor words it (the destinations read these answers)."""
    if path.endswith("/mp/collect"):
        return web.Response(status=204)
    if path.endswith("/import"):
        body = {"code": 200, "num_records_imported": events, "status": "OK"}
    elif path.endswith(("/2/httpapi", "/batch")):
        body = {"code": 200, "events_ingested": events, "payload_size_bytes": 0, "server_upload_time": 0}
    elif path.endswith("/batch/"):
        body = {"status": 1}
    elif path.endswith(":uploadClickConversions") or path.endswith(":uploadConversionAdjustments"):
        body = {"results": [{} for _ in range(events)]}
    elif path.endswith("/events"):
        body = {"events_received": events, "messages": [], "fbtrace_id": "bench"}
    elif path.endswith(("/engage", "/groups", "/track")):
        return web.Response(body=b"1", content_type="text/plain")
    else:
        body = {"success": True}
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


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

    async def token(_: web.Request) -> web.Response:
        return web.json_response({"access_token": "bench-token", "expires_in": 3600, "token_type": "Bearer"})

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
        return vendor_answer(request.path, n)

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
    app.router.add_post("/token", token)
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
