"""Connection-level limits aiohttp does not have: a deadline and a size cap for the request head.

aiohttp bounds a request's body (the handlers read it under ``server.request_timeout``) and each
header line (8190 bytes), but not the head as a whole: a client that opens a connection and sends
its headers a few bytes at a time, or 100 header lines of 8 KB and never the blank line that ends
them, keeps the connection and its buffers until the keep-alive timer fires (3630 s by default,
counted from the connection's start and not reset by data). Hundreds of such clients held
hundreds of MB (measured: about 1.6 MB each) for an hour.

Here a request head must be complete within ``head_timeout`` of the connection opening, or of the
first byte of a later request on a kept-alive connection, and within ``max_head_bytes``; else the
client gets a 408 or 431 with the usual JSON error body and the connection is closed. An idle
kept-alive connection (no byte of a new request) is left to aiohttp's keep-alive timer, so that
proxies keeping connections open in front of the collector are not cut.

Limits: aiohttp's parser does not say whether it holds part of a head, so the start of a head that
arrives in the same read as the end of the request before it, with nothing after, is left to the
keep-alive timer too (at most one read's worth of bytes). The handler reads a few of aiohttp's
private attributes (_messages, _current_request, _waiter, _request_count); tests/chaos/
test_hostile.py fails if an aiohttp upgrade changes them. So pyproject.toml bounds aiohttp to the
minor releases tested, and requirements.lock pins the one the suite last passed with.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from collector.ingest.errors import IngestError

# nginx allows 4 x 8 KB of headers by default, Node 16 KB; aiohttp alone up to 128 lines of 8 KB.
MAX_HEAD_BYTES = 64 * 1024
_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class _HeadGuardedHandler(RequestHandler):
    """aiohttp's connection handler, with a deadline and a size cap on each request head."""

    def __init__(self, manager: web.Server, *, head_timeout: float, max_head_bytes: int, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._max_head_bytes = max_head_bytes
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    # -- what aiohttp calls ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(self._head_timeout)  # the first request's head, counted from the connection's start

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close:
            return super().data_received(data)
        waiting = self._waiting_for_head()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a head is complete (or refused by the parser)
            self._head_bytes = 0
            self._disarm()
            return
        if not waiting or not data:
            return  # body bytes: the handlers bound those with server.request_timeout
        self._head_bytes += len(data)
        if self._head_bytes > self._max_head_bytes:
            self._refuse(431, "headers_too_large", f"the request head is larger than {self._max_head_bytes} bytes")
        elif self._head_timer is None:
            self._arm(self._head_timeout)

    # -- the guard ------------------------------------------------------------------------------

    def _waiting_for_head(self) -> bool:
        """True when bytes arriving now belong to the head of a request not yet parsed."""
        if self._messages:
            return False
        request = self._current_request
        if request is not None:
            # A handler is running: once its body is all in, more bytes are a pipelined request.
            return request.content.is_eof()
        waiter = self._waiter
        return (waiter is not None and not waiter.done()) or self._request_count == 0

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._head_timer = self._loop.call_later(delay, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._force_close or self.transport is None or self._messages:
            return
        if self._current_request is not None:
            self._arm(1.0)  # a pipelined head behind a request still being answered: check again
            return
        if self._request_count and not self._head_bytes:
            return  # an idle kept-alive connection: aiohttp's keep-alive timer owns it
        if not self._head_bytes:
            self.force_close()  # connected and never sent a byte: nothing to answer
            return
        self._refuse(
            408, "request_timeout", f"the request headers did not arrive within {self._head_timeout:g}s"
        )

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._disarm()
        transport = self.transport
        # (Behind a request still being answered, a pipelined head is refused by closing only: an
        # answer of ours could land in the middle of that response.)
        if transport is not None and not transport.is_closing() and self._current_request is None:
            body = IngestError(status, code, message).body()
            transport.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (status, _REASONS[status].encode(), len(body), body)
            )
        self.force_close()


class _GuardedServer:
    """aiohttp's Server, making guarded handlers: everything else is the wrapped server's."""

    def __init__(self, server: web.Server, head_timeout: float, max_head_bytes: int) -> None:
        self._server = server
        self._head_timeout = head_timeout
        self._max_head_bytes = max_head_bytes

    def __call__(self) -> RequestHandler:
        server = self._server
        return _HeadGuardedHandler(
            server, loop=server._loop, head_timeout=self._head_timeout, max_head_bytes=self._max_head_bytes,
            **server._kwargs,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class GuardedAppRunner(web.AppRunner):
    """web.AppRunner whose connections must send each request head within ``head_timeout`` seconds
    and ``max_head_bytes`` bytes."""

    def __init__(
        self, app: web.Application, *, head_timeout: float, max_head_bytes: int = MAX_HEAD_BYTES, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._head_guard = (head_timeout, max_head_bytes)

    async def _make_server(self) -> Any:
        return _GuardedServer(await super()._make_server(), *self._head_guard)
