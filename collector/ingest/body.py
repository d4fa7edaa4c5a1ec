"""Reading a request body: size caps, gzip/deflate with a capped output, JSON whatever the
Content-Type (the browser sends text/plain to avoid a CORS preflight)."""

from __future__ import annotations

import asyncio
import zlib

import msgspec
from aiohttp import web

from collector.ingest.errors import IngestError

_decoder = msgspec.json.Decoder()


def _too_large(limit: int) -> IngestError:
    return IngestError(413, "request_too_large", f"the request body is larger than {limit} bytes")


async def read_body(request: web.Request, limit: int, timeout: float) -> bytes:
    """The body, decompressed, at most ``limit`` bytes either way (a gzip bomb stops at the cap)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    content = request.content
    if content.is_eof():
        # The usual case: the whole body came with the headers. No timer needed.
        raw = content.read_nowait(limit + 1)
    else:
        try:
            async with asyncio.timeout(timeout):
                raw = await _read_all(request, limit + 1)
        except TimeoutError:
            raise IngestError(408, "request_timeout", f"the body did not arrive within {timeout:g}s") from None
        except (ConnectionError, web.RequestPayloadError):
            # The client went away mid-body (or broke its chunked encoding): nobody reads this
            # answer, but it is a client error, not a server one to log with a traceback.
            raise IngestError(400, "incomplete_body", "the connection ended before the whole body arrived") from None
    if len(raw) > limit:
        raise _too_large(limit)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if not encoding or encoding == "identity":
        return raw
    if encoding in ("gzip", "x-gzip"):
        return _inflate(raw, zlib.MAX_WBITS | 16, limit)
    if encoding == "deflate":
        return _inflate(raw, zlib.MAX_WBITS, limit)
    raise IngestError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported (use gzip)")


async def _read_all(request: web.Request, limit: int) -> bytes:
    # StreamReader.read(n) returns what has arrived so far, not n bytes: loop until EOF or limit.
    chunks = []
    size = 0
    while size < limit:
        chunk = await request.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """Decompress, never producing more than ``limit + 1`` bytes. A gzip body may hold several
    members one after another (RFC 1952); each is decompressed in turn."""
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as error:
            raise IngestError(400, "invalid_encoding", f"the body is not valid compressed data: {error}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise IngestError(413, "request_too_large", f"the decompressed body is larger than {limit} bytes")
        if not inflater.eof:
            raise IngestError(400, "invalid_encoding", "the compressed body is truncated")
        data = inflater.unused_data
        if not data.strip(b"\0 \t\r\n"):
            return bytes(out)
        if wbits != zlib.MAX_WBITS | 16:
            raise IngestError(400, "invalid_encoding", "the compressed body is followed by other data")


def decode_json(body: bytes) -> object:
    if not body:
        raise IngestError(400, "invalid_json", "the request body is empty")
    try:
        return _decoder.decode(body)
    except UnicodeDecodeError:
        raise IngestError(400, "invalid_utf8", "the body is not valid UTF-8") from None
    except RecursionError:
        raise IngestError(400, "nesting_too_deep", "the JSON is nested too deeply") from None
    except msgspec.DecodeError as error:
        # JSON libraries report bad UTF-8 in their own ways (msgspec raised UnicodeDecodeError up
        # to 0.22, a DecodeError since 0.23): the bytes decide, whatever the message says.
        if not _is_utf8(body):
            raise IngestError(400, "invalid_utf8", "the body is not valid UTF-8") from None
        raise IngestError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    except msgspec.ValidationError as error:  # e.g. a number too large for a float
        raise IngestError(400, "invalid_json", f"the body has an unreadable value: {error}") from None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
