"""Append events as JSON lines (one stored event per line) to files in a directory.

The current file is ``<path>/<prefix>.jsonl``. Before a batch is written, a current file that has
reached ``rotate_bytes`` or was opened more than ``rotate_every`` ago is renamed to
``<prefix>-<UTC time of rotation>.jsonl`` (e.g. ``events-20240102T030405.678Z.jsonl``) and,
with ``compress: true``, gzipped to ``.jsonl.gz`` in the background. A rotated file is complete:
nothing is written to it after its rename. Rotation is checked when a batch arrives, so an idle
destination keeps its current file until the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import shutil
import threading
import time
from datetime import datetime, timezone
from typing import Any, ClassVar

from collector.config.units import ByteSize, Duration
from collector.destinations.base import (
    DELIVERED,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    retry,
)

log = logging.getLogger(__name__)


class FileConfig(DestinationConfig, tag="file", kw_only=True):
    path: str  # the directory; created if missing
    prefix: str = "events"
    rotate_bytes: ByteSize = ByteSize(100 * 1024**2)  # 0: never by size
    rotate_every: Duration = Duration(3600)  # 0: never by age
    compress: bool = False
    # Each batch is on disk (fsync) before it counts as delivered; false leaves that to the OS.
    fsync: bool = True

    example: ClassVar[dict[str, Any]] = {
        "type": "file",
        "path": "./data/export",
        "prefix": "events",
        "rotate_bytes": "100MiB",
        "rotate_every": "1h",
        "compress": True,
        "fsync": True,
    }

    def __post_init__(self) -> None:
        if not self.prefix or "/" in self.prefix or self.prefix.startswith("."):
            raise ValueError(f"prefix must be a plain file name, got {self.prefix!r}")


class FileDestination(Destination):
    Config = FileConfig
    display_name = "File"
    config: FileConfig

    def __init__(self, name: str, config: FileConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._current = os.path.join(config.path, f"{config.prefix}.jsonl")
        self._fd: int | None = None
        self._size = 0
        self._opened_at = 0.0
        # The engine may call send from several lanes at once. The asyncio lock queues them without
        # tying up worker threads; the thread lock still holds if a send is cancelled mid-write.
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._compressing: set[asyncio.Task[None]] = set()

    async def send(self, batch: list[Envelope]) -> Outcome:
        data = b"".join(e.raw + b"\n" for e in batch)
        async with self._lock:
            try:
                rotated = await asyncio.to_thread(self._write, data)
            except OSError as e:
                return retry(str(e) if e.filename else f"{e}: {self._current}")
        if rotated and self.config.compress:
            task = asyncio.create_task(asyncio.to_thread(_gzip_file, rotated))
            self._compressing.add(task)
            task.add_done_callback(self._compressing.discard)
        return DELIVERED

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close)
        await asyncio.gather(*self._compressing, return_exceptions=True)

    # The methods below run in a worker thread.

    def _close(self) -> None:
        with self._thread_lock:
            self._close_fd()

    def _write(self, data: bytes) -> str | None:
        with self._thread_lock:
            return self._write_locked(data)

    def _write_locked(self, data: bytes) -> str | None:
        """Append ``data`` to the current file, rotating it first if due; returns a rotated file's path.
        On failure the file is cut back to where it was, so a retried batch leaves no half line."""
        fd, rotated = self._open(), None
        if self._due():
            rotated = self._rotate()
            fd = self._open()
        start = self._size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.config.fsync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            self._close_fd()
            raise
        self._size = start + len(data)
        return rotated

    def _due(self) -> bool:
        if self._size == 0:
            return False
        cfg = self.config
        too_big = cfg.rotate_bytes > 0 and self._size >= cfg.rotate_bytes
        too_old = cfg.rotate_every > 0 and time.monotonic() - self._opened_at >= cfg.rotate_every
        return too_big or too_old

    def _open(self) -> int:
        if self._fd is None:
            os.makedirs(self.config.path, exist_ok=True)
            self._fd = os.open(self._current, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._size = _cut_partial_line(self._fd)
            self._opened_at = time.monotonic()
            self._sync_dir()
        return self._fd

    def _rotate(self) -> str | None:
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond // 1000:03d}Z"
        base = os.path.join(self.config.path, f"{self.config.prefix}-{stamp}")
        target, n = f"{base}.jsonl", 1
        while os.path.exists(target) or os.path.exists(target + ".gz"):
            target, n = f"{base}-{n}.jsonl", n + 1
        self._close_fd()
        try:
            os.rename(self._current, target)
        except FileNotFoundError:  # removed by someone else: nothing left to rotate
            return None
        self._sync_dir()
        return target

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _sync_dir(self) -> None:
        """Make a created or renamed file's name durable, not just its contents."""
        if self.config.fsync:
            fd = os.open(self.config.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _cut_partial_line(fd: int) -> int:
    """Drop a last line left unfinished by a crash (its batch was not acknowledged, so it comes again);
    returns the file's size."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    tail_start = max(0, size - 4 * 1024 * 1024)
    end = os.pread(fd, size - tail_start, tail_start).rfind(b"\n") + 1
    if not end and tail_start:
        return size  # no line end in the last 4 MiB: not a line this collector wrote; leave it
    keep = tail_start + end
    os.ftruncate(fd, keep)
    return keep


def _gzip_file(path: str) -> None:
    """``path`` -> ``path.gz``; the original is removed only once the compressed copy is complete."""
    partial = path + ".gz.partial"
    try:
        with open(path, "rb") as src, gzip.open(partial, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.rename(partial, path + ".gz")
        os.remove(path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(partial)
        log.warning("file destination: could not compress %s, left uncompressed: %s", path, e)
