"""The file destination's specifics; the shared contract is in test_contract.py."""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.destinations.base import DELIVERED, Destination, Envelope
from collector.destinations import file as file_module

from .fakes import build, envelopes, parse, started, stored_events

ROTATED = re.compile(r"^events-\d{8}T\d{6}\.\d{3}Z(-\d+)?\.jsonl(\.gz)?$")


def _file(tmp_path: Path, **settings: Any) -> Destination:
    return build({"type": "file", "path": str(tmp_path / "out"), **settings}, None, tmp_path)


def _lines(batch: list[Envelope]) -> bytes:
    return b"".join(e.raw + b"\n" for e in batch)


def _rotated(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name != "events.jsonl")


async def test_appends_batches_as_json_lines(tmp_path: Path) -> None:
    first, second = envelopes(), envelopes(stored_events()[:1])
    async with started(_file(tmp_path)) as destination:
        assert await destination.send(first) == DELIVERED
        assert await destination.send(second) == DELIVERED
    data = (tmp_path / "out" / "events.jsonl").read_bytes()
    assert data == _lines(first + second)
    assert [msgspec.json.decode(line) for line in data.splitlines()] == stored_events() + stored_events()[:1]


async def test_appends_to_the_file_a_previous_run_left(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "events.jsonl").write_bytes(b'{"type":"track","event":"Before"}\n')
    async with started(_file(tmp_path)) as destination:
        await destination.send(envelopes())
    before = b'{"type":"track","event":"Before"}\n'
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == before + _lines(envelopes())


async def test_half_line_left_by_a_crash_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "events.jsonl").write_bytes(b'{"type":"track"}\n{"type":"ide')
    async with started(_file(tmp_path)) as destination:
        await destination.send(envelopes())
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == b'{"type":"track"}\n' + _lines(envelopes())


async def test_prefix_names_the_files(tmp_path: Path) -> None:
    async with started(_file(tmp_path, prefix="shop-web")) as destination:
        await destination.send(envelopes())
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["shop-web.jsonl"]


@pytest.mark.parametrize("prefix", ["", "a/b", ".hidden"])
def test_prefix_must_be_a_plain_name(prefix: str) -> None:
    with pytest.raises(msgspec.ValidationError, match="prefix"):
        parse({"type": "file", "path": "/tmp/x", "prefix": prefix})


async def test_rotates_when_the_file_reaches_rotate_bytes(tmp_path: Path) -> None:
    first, second = envelopes(), envelopes(stored_events()[1:])
    async with started(_file(tmp_path, rotate_bytes=len(_lines(first)))) as destination:
        await destination.send(first)
        assert _rotated(tmp_path / "out") == []
        await destination.send(second)
    [rotated] = _rotated(tmp_path / "out")
    assert ROTATED.match(rotated.name), rotated.name
    assert rotated.read_bytes() == _lines(first)
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == _lines(second)


async def test_rotates_when_the_file_is_older_than_rotate_every(tmp_path: Path) -> None:
    async with started(_file(tmp_path, rotate_every="50ms")) as destination:
        await destination.send(envelopes())
        await destination.send(envelopes())  # too young: same file
        assert _rotated(tmp_path / "out") == []
        await asyncio.sleep(0.06)
        await destination.send(envelopes()[:1])
    [rotated] = _rotated(tmp_path / "out")
    assert rotated.read_bytes() == _lines(envelopes() * 2)
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == _lines(envelopes()[:1])


async def test_compress_gzips_rotated_files(tmp_path: Path) -> None:
    batch = envelopes(stored_events() * 10)
    async with started(_file(tmp_path, rotate_bytes=1, compress=True)) as destination:
        for _ in range(3):
            assert await destination.send(batch) == DELIVERED
    rotated = _rotated(tmp_path / "out")
    assert len(rotated) == 2 and all(ROTATED.match(p.name) and p.name.endswith(".jsonl.gz") for p in rotated)
    assert [gzip.decompress(p.read_bytes()) for p in rotated] == [_lines(batch)] * 2
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == _lines(batch)


async def test_full_disk_is_retried_and_leaves_no_partial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write, calls = os.write, []

    def write_then_fill_up(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))  # part of the batch gets on disk...
        raise OSError(28, "No space left on device")  # ... then the disk is full

    async with started(_file(tmp_path)) as destination:
        monkeypatch.setattr(file_module.os, "write", write_then_fill_up)
        outcome = await destination.send(envelopes())
        assert (outcome.kind, outcome.retry_after) == ("retry", None)
        assert "No space left on device" in outcome.reason and "events.jsonl" in outcome.reason
        assert (tmp_path / "out" / "events.jsonl").read_bytes() == b""
        monkeypatch.setattr(file_module.os, "write", real_write)  # space freed: the engine retries
        assert await destination.send(envelopes()) == DELIVERED
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == _lines(envelopes())


async def test_recovers_once_the_directory_can_be_created(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("in the way")
    async with started(_file(tmp_path)) as destination:
        assert (await destination.send(envelopes())).kind == "retry"
        (tmp_path / "out").unlink()
        assert await destination.send(envelopes()) == DELIVERED
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == _lines(envelopes())


@pytest.mark.parametrize("fsync", [True, False])
async def test_fsync_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(file_module.os, "fsync", recording_fsync)
    async with started(_file(tmp_path, fsync=fsync)) as destination:
        await destination.send(envelopes())
        assert (str(tmp_path / "out" / "events.jsonl") in synced) is fsync


async def test_writes_run_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads, real_write = [], os.write

    def recording_write(fd: int, data: Any) -> int:
        threads.append(threading.current_thread())
        return real_write(fd, data)

    monkeypatch.setattr(file_module.os, "write", recording_write)
    async with started(_file(tmp_path)) as destination:
        await destination.send(envelopes())
    assert threads and threading.main_thread() not in threads


async def test_concurrent_sends_never_interleave_lines(tmp_path: Path) -> None:
    batches = [envelopes(stored_events() * 50) for _ in range(8)]
    async with started(_file(tmp_path, rotate_bytes="40KB")) as destination:
        outcomes = await asyncio.gather(*(destination.send(b) for b in batches))
    assert outcomes == [DELIVERED] * 8
    files = _rotated(tmp_path / "out") + [tmp_path / "out" / "events.jsonl"]
    lines = [line for f in files for line in f.read_bytes().splitlines()]
    assert sorted(lines) == sorted(e.raw for b in batches for e in b)


async def test_a_send_cancelled_mid_write_does_not_overlap_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write, writing, overlaps = os.write, threading.Event(), []
    busy = threading.Lock()

    def slow_write(fd: int, data: Any) -> int:
        if not busy.acquire(blocking=False):
            overlaps.append(len(data))
            return real_write(fd, data)
        writing.set()
        time.sleep(0.05)
        try:
            return real_write(fd, data)
        finally:
            busy.release()

    monkeypatch.setattr(file_module.os, "write", slow_write)
    async with started(_file(tmp_path)) as destination:
        first = asyncio.create_task(destination.send(envelopes()))
        await asyncio.to_thread(writing.wait, 5)
        first.cancel()  # e.g. the engine's timeout; the thread still finishes its write
        assert await destination.send(envelopes()) == DELIVERED
    assert overlaps == []
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == _lines(envelopes()) * 2
