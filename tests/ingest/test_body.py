"""body.py: reading, decompressing and decoding a request body, through a real aiohttp server
(the collector's own settings: auto_decompress off, so body.py does the inflating)."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from typing import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from collector.ingest.body import _inflate, decode_json, read_body
from collector.ingest.errors import IngestError

LIMIT = 64 * 1024
TIMEOUT = 0.3


async def _echo(request: web.Request) -> web.Response:
    try:
        body = await read_body(request, LIMIT, TIMEOUT)
        value = decode_json(body)
    except IngestError as error:
        return web.Response(status=error.status, body=error.body(), content_type="application/json")
    return web.json_response({"value": value, "size": len(body)})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(client_max_size=LIMIT + 1)
    app.router.add_post("/echo", _echo)
    server = TestServer(app)
    # as the collector's AppRunner: aiohttp must hand over the body as sent (TestServer ignores
    # runner options given to its constructor, so start it here; TestClient then reuses it)
    await server.start_server(auto_decompress=False)
    async with TestClient(server) as test_client:
        yield test_client


async def post(client: TestClient, data: object, **headers: str) -> tuple[int, dict]:
    async with client.post("/echo", data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def assert_error(answer: tuple[int, dict], status: int, code: str) -> None:
    got_status, body = answer
    assert (got_status, body.get("code")) == (status, code), body
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]


def bomb(decompressed: int, wbits: int = 31) -> bytes:
    """Zeros, compressed: about 1,000 times smaller than what they expand to."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(decompressed >> 20)]
    parts.append(compressor.compress(bytes(decompressed & ((1 << 20) - 1))))
    parts.append(compressor.flush())
    return b"".join(parts)


EVENT = {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro", "seats": 3}}
EVENT_BYTES = json.dumps(EVENT).encode()


# -- plain bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None]
)
async def test_json_whatever_the_content_type(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert await post(client, EVENT_BYTES, **headers) == (200, {"value": EVENT, "size": len(EVENT_BYTES)})


async def test_identity_encoding_is_plain(client: TestClient) -> None:
    assert (await post(client, EVENT_BYTES, **{"Content-Encoding": "identity"}))[0] == 200


async def test_a_body_at_the_limit_is_read_whole(client: TestClient) -> None:
    body = EVENT_BYTES + b" " * (LIMIT - len(EVENT_BYTES))
    assert await post(client, body) == (200, {"value": EVENT, "size": LIMIT})


async def test_a_body_arriving_in_pieces_is_read_whole(client: TestClient) -> None:
    body = b'{"pad":"' + b"x" * 3000 + b'"}'

    async def slowly() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 700):
            yield body[start : start + 700]
            await asyncio.sleep(0.01)

    status, answer = await post(client, slowly())  # chunked, no Content-Length
    assert (status, answer["size"]) == (200, len(body))


async def test_over_the_limit_with_content_length_is_413(client: TestClient) -> None:
    assert_error(await post(client, b" " * (LIMIT + 1)), 413, "request_too_large")


async def test_over_the_limit_chunked_is_413(client: TestClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 1000 + 2):
            yield b" " * 1000

    assert_error(await post(client, chunks()), 413, "request_too_large")


async def test_a_body_that_stalls_is_408(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"userId\":")
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b'"code":"request_timeout"' in head


# -- compressed bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", " gzip "])
async def test_gzip_bodies(client: TestClient, encoding: str) -> None:
    assert await post(client, gzip.compress(EVENT_BYTES), **{"Content-Encoding": encoding}) == (
        200, {"value": EVENT, "size": len(EVENT_BYTES)},
    )


async def test_deflate_bodies(client: TestClient) -> None:
    assert await post(client, zlib.compress(EVENT_BYTES), **{"Content-Encoding": "deflate"}) == (
        200, {"value": EVENT, "size": len(EVENT_BYTES)},
    )


async def test_gzip_decompressing_to_exactly_the_limit_is_accepted(client: TestClient) -> None:
    body = EVENT_BYTES + b" " * (LIMIT - len(EVENT_BYTES))
    assert (await post(client, gzip.compress(body), **{"Content-Encoding": "gzip"}))[0] == 200


@pytest.mark.parametrize("decompressed", [LIMIT + 1, 10 * LIMIT, 16 * 1024 * 1024])
@pytest.mark.parametrize("encoding, wbits", [("gzip", 31), ("deflate", 15)])
async def test_compressed_bodies_expanding_over_the_limit_are_413(
    client: TestClient, decompressed: int, encoding: str, wbits: int
) -> None:
    body = bomb(decompressed, wbits)
    assert len(body) <= LIMIT  # small on the wire: only the decompressed size is over
    assert_error(await post(client, body, **{"Content-Encoding": encoding}), 413, "request_too_large")


def test_a_gzip_bomb_stops_at_the_cap_without_using_memory() -> None:
    limit = 500 * 1024
    body = bomb(128 * 1024 * 1024)  # 128 MiB of zeros in about 125 KB
    assert len(body) < limit
    tracemalloc.start()
    try:
        with pytest.raises(IngestError) as caught:
            _inflate(body, zlib.MAX_WBITS | 16, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (caught.value.status, caught.value.code) == (413, "request_too_large")
    assert peak < 8 * 1024 * 1024, f"inflating used {peak} bytes"


async def test_a_truncated_gzip_body_is_400(client: TestClient) -> None:
    whole = gzip.compress(EVENT_BYTES * 20)
    for cut in (len(whole) - 4, len(whole) // 2, 12):
        assert_error(await post(client, whole[:cut], **{"Content-Encoding": "gzip"}), 400, "invalid_encoding")


@pytest.mark.parametrize(
    "body", [EVENT_BYTES, b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic", b"\x1f\x8b", b""], ids=["plain", "corrupt", "magic", "empty"]
)
async def test_a_body_that_is_not_gzip_is_400(client: TestClient, body: bytes) -> None:
    assert_error(await post(client, body, **{"Content-Encoding": "gzip"}), 400, "invalid_encoding")


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br", "snappy"])
async def test_an_unknown_encoding_is_415(client: TestClient, encoding: str) -> None:
    assert_error(await post(client, EVENT_BYTES, **{"Content-Encoding": encoding}), 415, "unsupported_encoding")


# -- decoding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b'{"userId":"\xff\xfe"}', b'{"event":"caf\xe9"}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\xc3"}',
     b'{"caf\xe9":1}', b'{"a":"\xff"', b'{"a":1}\xff'],
    ids=["ff-fe", "latin-1", "encoded-surrogate", "cut-sequence", "in-a-key", "and-truncated", "after-the-json"],
)
async def test_invalid_utf8_is_400(client: TestClient, body: bytes) -> None:
    assert_error(await post(client, body), 400, "invalid_utf8")


@pytest.mark.parametrize("body", ['{"event":"café"'.encode(), '{"a":"\\ud800"}x'.encode(), b'{"a":\xc3\xa9}'])
async def test_valid_utf8_that_is_not_json_is_invalid_json(client: TestClient, body: bytes) -> None:
    assert_error(await post(client, body), 400, "invalid_json")


async def test_invalid_utf8_inside_gzip_is_400(client: TestClient) -> None:
    body = gzip.compress(b'{"userId":"\xff"}')
    assert_error(await post(client, body, **{"Content-Encoding": "gzip"}), 400, "invalid_utf8")


@pytest.mark.parametrize("depth", [2_000, 10_000])
@pytest.mark.parametrize("open_, close", [(b"[", b"]"), (b'{"a":', b"}")], ids=["arrays", "objects"])
async def test_absurd_nesting_is_400(client: TestClient, depth: int, open_: bytes, close: bytes) -> None:
    body = open_ * depth + b"1" + close * depth
    assert len(body) <= LIMIT
    assert_error(await post(client, body), 400, "nesting_too_deep")


async def test_absurd_nesting_inside_gzip_is_400(client: TestClient) -> None:
    body = gzip.compress(b"[" * 30_000 + b"]" * 30_000)
    assert_error(await post(client, body, **{"Content-Encoding": "gzip"}), 400, "nesting_too_deep")


def test_absurd_nesting_is_400_at_any_size() -> None:
    for depth in (1_000, 10_000, 1_000_000):
        with pytest.raises(IngestError) as caught:
            decode_json(b"[" * depth + b"]" * depth)
        assert (caught.value.status, caught.value.code) == (400, "nesting_too_deep")


@pytest.mark.parametrize(
    "body",
    [
        b'{"userId": "u1",',
        b"{userId: 'u1'}",
        b'{"userId":"u1"} trailing',
        b'{"a":NaN}',
        b'{"a":1e400}',
        b'{"a":"\\ud800"}',
        b"\xef\xbb\xbf{}",
        b"undefined",
        b"   ",
    ],
    ids=["cut", "js-object", "trailing", "nan", "huge-number", "lone-surrogate", "bom", "undefined", "blank"],
)
async def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    assert_error(await post(client, body), 400, "invalid_json")


async def test_an_empty_body_is_400(client: TestClient) -> None:
    assert_error(await post(client, b""), 400, "invalid_json")


def test_decode_json_returns_any_json_value() -> None:
    # the caller decides whether it must be an object
    assert decode_json(b"[1, 2]") == [1, 2]
    assert decode_json(b"null") is None
    assert decode_json('{"name":"Zoë 🚀"}'.encode()) == {"name": "Zoë 🚀"}


def test_the_error_body_is_segments() -> None:
    error = IngestError(400, "invalid_json", "the body is not valid JSON")
    assert json.loads(error.body()) == {"success": False, "code": "invalid_json", "message": "the body is not valid JSON"}


def test_a_gzip_body_of_several_members_is_read_whole():
    import gzip
    import zlib

    from collector.ingest.body import _inflate

    assert _inflate(gzip.compress(b'{"a":') + gzip.compress(b"1}"), zlib.MAX_WBITS | 16, 100) == b'{"a":1}'


def test_junk_after_a_deflate_body_is_refused():
    import zlib

    import pytest

    from collector.ingest.body import _inflate
    from collector.ingest.errors import IngestError

    with pytest.raises(IngestError) as error:
        _inflate(zlib.compress(b"{}") + b"junk", zlib.MAX_WBITS, 100)
    assert error.value.code == "invalid_encoding"
