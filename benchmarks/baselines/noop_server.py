"""The floor the collector is compared with: aiohttp + uvloop, read the body, decode it, answer 200.

Does what any ingestion endpoint must do at the least (gunzip when asked, decode the JSON) and nothing
else: no auth, no validation, no storage.

    python -m benchmarks.baselines.noop_server --port 9000
"""

from __future__ import annotations

import argparse
import zlib
from typing import Awaitable, Callable

import msgspec
import uvloop
from aiohttp import web

OK = b'{"success":true}'


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    # aiohttp's parser already inflates a Content-Encoding: gzip body; this covers an undeclared one.
    if body[:2] == b"\x1f\x8b":
        body = zlib.decompress(body, wbits=31)
    msgspec.json.decode(body)
    return web.Response(body=OK, content_type="application/json")


async def ready(_: web.Request) -> web.Response:
    return web.Response(body=OK, content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.Response]]


def make_app(handler: Handler = handle) -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app.router.add_get("/readyz", ready)
    app.router.add_post("/{path:.*}", handler)
    return app


def main(handler: Handler = handle, description: str = __doc__) -> None:
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(make_app(handler), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
