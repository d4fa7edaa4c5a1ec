"""Storage that runs out: a really full filesystem (a tmpfs of a few MB), storage.max_bytes and
storage.min_free_bytes, each under load.

What must hold: at the limit ingestion answers 503 + Retry-After (never a 200 for an event that
was not committed, never a 500), /readyz fails, the daemon stays up; once there is room again
ingestion recovers by itself; the SQLite file passes PRAGMA integrity_check; every acknowledged
event is stored and delivered, and no refused one was stored.

Runs as root (CI and this machine are): a tmpfs is mounted for the test and unmounted after. A
machine where that is impossible fails these tests rather than skipping them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .support import Archive, Loader, file_destination, integrity, storage_bytes, stored_message_ids, wait_until

WRITE_KEY = "wk_disk"
MB = 1024 * 1024


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """mount(size) -> a fresh tmpfs of ``size`` bytes."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(point)], capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs (these tests need root): {result.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def config(storage: dict, archive: Path) -> dict:
    return {
        "storage": storage,
        "sources": {"disk": {"write_key": WRITE_KEY}},
        "destinations": {"archive": file_destination(archive, batch={"max_wait": 0.05, "max_events": 500})},
    }


def readyz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def healthz(url: str) -> int:
    with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
        return answer.status


class Flips:
    """The /readyz statuses seen, in order, without repeats: how often it failed and recovered."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def add(self, status: int) -> None:
        if not self.seen or self.seen[-1] != status:
            self.seen.append(status)

    @property
    def recoveries(self) -> int:
        return sum(1 for a, b in zip(self.seen, self.seen[1:]) if (a, b) == (503, 200))

    def __repr__(self) -> str:
        return f"Flips({self.seen})"


def fill(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.write(b"\xa5" * size)


def assert_only_200_and_503(loaders: list[Loader]) -> list[tuple[str | None, dict]]:
    statuses = sum((loader.statuses for loader in loaders), start=type(loaders[0].statuses)())
    assert set(statuses) <= {200, 503}, statuses
    errors = sum((loader.errors for loader in loaders), start=type(loaders[0].errors)())
    assert not errors, f"connections failed: {errors}"
    unavailable = [answer for loader in loaders for answer in loader.unavailable]
    for retry_after, body in unavailable:
        assert retry_after == "5", retry_after
        assert body["success"] is False and body["code"] == "storage_unavailable" and body["message"], body
    return unavailable


def assert_all_delivered_and_sound(process, archive: Archive, data: Path, loaders: list[Loader], timeout: float = 20) -> set[str]:
    """Every acknowledged event delivered, no refused one delivered or stored; a clean stop; a sound
    file. Returns the messageIds still stored."""
    acked = {m for loader in loaders for m in loader.acked}
    refused = {m for loader in loaders for m in loader.refused}
    assert len(acked) == sum(len(loader.acked) for loader in loaders)  # no id acknowledged twice
    wait_until("every acknowledged event delivered", lambda: acked <= archive.message_ids(), timeout=timeout)
    assert not refused & archive.message_ids(), "an event answered 503 was delivered"
    assert process.stop(timeout=20) == 0
    db = data / "events.db"
    assert integrity(db) == "ok"
    stored = stored_message_ids(db)
    assert not refused & stored, "an event answered 503 was stored: the failed commit was not rolled back"
    return stored


def test_a_full_filesystem_answers_503_and_recovers_once_space_is_freed(small_fs, collector_factory, tmp_path) -> None:
    """min_free_bytes 0: the disk really fills (ENOSPC inside a commit). Nothing is acknowledged
    that was not committed; when the operator frees space, ingestion resumes by itself."""
    fs = small_fs(8 * MB)
    filler = fs / "filler"
    fill(filler, 3 * MB)
    data, archive = fs / "data", Archive(tmp_path / "archive")
    process = collector_factory(config({"path": str(data), "min_free_bytes": 0}, tmp_path / "archive"))
    loaders = [Loader(process.port, WRITE_KEY, f"full{i}", retry=False) for i in range(3)]
    for loader in loaders:
        loader.start()
    try:
        wait_until("503s from a full disk", lambda: sum(l.statuses[503] for l in loaders) >= 20, timeout=15)
        status, ready = readyz(process.url)
        assert status == 503 and ready["status"] == "unavailable" and ready["reason"], ready
        assert healthz(process.url) == 200
    finally:
        for loader in loaders:
            loader.stop()
    assert process.alive
    unavailable = assert_only_200_and_503(loaders)
    assert any("full" in body["message"] for _, body in unavailable), unavailable[:3]
    assert shutil.disk_usage(fs).free < MB  # it really was full
    acked_before = sum(len(l.acked) for l in loaders)
    assert acked_before >= 1000  # 5 MB of events did go in first

    filler.unlink()  # the operator makes room
    wait_until("/readyz to recover by itself", lambda: readyz(process.url)[0] == 200, timeout=15)
    after = Loader(process.port, WRITE_KEY, "after", retry=False)
    after.start()
    wait_until("events accepted again", lambda: len(after.acked) >= 200, timeout=15)
    after.stop()
    assert after.statuses[200] >= 10 and set(after.statuses) == {200}, after.statuses
    stored = assert_all_delivered_and_sound(process, archive, data, loaders + [after])
    assert {m for l in loaders + [after] for m in l.acked} <= stored


def test_storage_max_bytes_caps_the_files_and_retention_makes_room_under_steady_load(collector_factory, tmp_path) -> None:
    """A 2 MB cap and about 2 MB/s coming in: the files stay near the cap (it is measured every
    64 KB of events, and counts the room the next checkpoint needs), 503s tell clients to wait, and
    retention (of delivered events, retention 0) keeps making room, so every event gets in."""
    cap = 2 * MB
    data, archive = tmp_path / "data", Archive(tmp_path / "archive")
    process = collector_factory(config(
        {"path": str(data), "min_free_bytes": 0, "max_bytes": cap, "retention": 0, "dedup_window": "1s"},
        tmp_path / "archive",
    ))
    loaders = [Loader(process.port, WRITE_KEY, f"cap{i}", retry=True, retry_after=0.1, interval=0.02) for i in range(2)]
    largest = 0
    readiness = Flips()
    for loader in loaders:
        loader.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            largest = max(largest, storage_bytes(data))
            readiness.add(readyz(process.url)[0])
            time.sleep(0.02)
    finally:
        for loader in loaders:
            loader.stop()
    assert process.alive
    unavailable = assert_only_200_and_503(loaders)
    assert unavailable and all("max_bytes" in body["message"] for _, body in unavailable), unavailable[:3]
    assert readiness.recoveries >= 3, readiness  # /readyz failed at the cap, and recovered, again and again
    assert largest < cap + MB // 2, largest
    acked = sum(len(l.acked) for l in loaders)
    stored = assert_all_delivered_and_sound(process, archive, data, loaders)
    print(f"\nmax_bytes {cap}: at most {largest} bytes on disk, {acked} events acknowledged, {len(stored)} still stored,"
          f" statuses {[dict(l.statuses) for l in loaders]}")
    # Retention removed delivered events to make room (a cap it could not relieve would stay 503).
    assert len(stored) < acked / 2, (len(stored), acked)


def test_min_free_bytes_keeps_the_disk_from_filling_and_the_collector_recovers_on_its_own(
    small_fs, collector_factory, tmp_path
) -> None:
    """A 10 MB filesystem holding only the collector's files, a 3 MB floor: under steady load
    503s come before the disk is full (free space never reaches zero, no commit ever fails),
    and delivery plus retention make room again, so every event gets in without anyone's help."""
    fs = small_fs(10 * MB)
    floor = 3 * MB
    data, archive = fs / "data", Archive(tmp_path / "archive")
    process = collector_factory(config(
        {"path": str(data), "min_free_bytes": floor, "retention": 0, "dedup_window": "1s"}, tmp_path / "archive",
    ))
    loaders = [Loader(process.port, WRITE_KEY, f"floor{i}", retry=True, retry_after=0.1, interval=0.02) for i in range(2)]
    least_free = shutil.disk_usage(fs).free
    readiness = Flips()
    for loader in loaders:
        loader.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            least_free = min(least_free, shutil.disk_usage(fs).free)
            readiness.add(readyz(process.url)[0])
            time.sleep(0.05)
    finally:
        for loader in loaders:
            loader.stop()
    assert process.alive
    unavailable = assert_only_200_and_503(loaders)
    assert unavailable, "the floor was never reached"
    assert all("min_free_bytes" in body["message"] for _, body in unavailable), unavailable[:3]  # never "full"
    assert least_free > MB, least_free
    assert readiness.recoveries >= 3, readiness
    acked = sum(len(l.acked) for l in loaders)
    assert "commit failed" not in process.logs()
    stored = assert_all_delivered_and_sound(process, archive, data, loaders)
    print(f"\nmin_free_bytes {floor}: least free {least_free} bytes, {acked} events acknowledged, {len(stored)} still stored")
    assert len(stored) < acked / 2, (len(stored), acked)  # retention made the room
