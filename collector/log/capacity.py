"""Backpressure: stop accepting before the disk or the configured cap is reached.

When either limit is hit, ingestion answers 503 + Retry-After (clients keep the events and retry)
and /readyz fails; it accepts again as soon as retention, delivery or the operator makes room.
"""

from __future__ import annotations

import logging
import os
import time

from collector.log.dedup import dedup_path
from collector.log.schema import db_path

log = logging.getLogger(__name__)

# After a write failed for lack of space, keep refusing at least this long, even if a check in
# between sees a little room: that room is usually SQLite's own rollback giving pages back.
_FULL_HOLD_SECONDS = 2.0


class CapacityGuard:
    def __init__(self, directory: str, max_bytes: int, min_free_bytes: int) -> None:
        self._db = db_path(directory)
        self._dedup = dedup_path(directory)
        self._directory = directory
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.accepting = True
        self.reason = ""
        self.used_bytes = 0
        self.free_bytes = 0
        self._full_until = 0.0
        # Bytes of events appended since the last check (see EventLog.append).
        self.unchecked_bytes = 0

    def check(self) -> bool:
        """Measure the database and the filesystem; update and return ``accepting``."""
        wal = file_size(self._db + "-wal")
        self.used_bytes = file_size(self._db) + wal + file_size(self._db + "-shm") + sum(
            file_size(self._dedup + suffix) for suffix in ("", "-wal", "-shm")
        )
        self.unchecked_bytes = 0
        try:
            stat = os.statvfs(self._directory)
            self.free_bytes = stat.f_bavail * stat.f_frsize
        except OSError as error:
            return self._set(False, f"cannot read free space: {error}")
        if time.monotonic() < self._full_until:
            return self._set(False, self.reason or "storage is full")
        # A checkpoint copies the WAL into the database file, which grows by up to the WAL's size
        # while the WAL file is still there: both limits keep room for that. Else the files would
        # overshoot max_bytes by up to the WAL at each checkpoint, and a disk filled with WAL could
        # never be checkpointed (nor retention write its deletes): it would stay full for good.
        if self.max_bytes and self.used_bytes + wal >= self.max_bytes:
            return self._set(
                False,
                f"storage.max_bytes reached ({self.used_bytes} bytes, and {wal} more for the next checkpoint;"
                f" {self.max_bytes} allowed)",
            )
        if self.min_free_bytes and self.free_bytes - wal < self.min_free_bytes:
            return self._set(
                False,
                f"free disk space below storage.min_free_bytes ({self.free_bytes} bytes free, of which"
                f" {wal} are kept for the next checkpoint; {self.min_free_bytes} wanted)",
            )
        return self._set(True, "")

    def mark_full(self, reason: str) -> None:
        """A write failed for lack of space: refuse at once, without waiting for the next check."""
        self._full_until = time.monotonic() + _FULL_HOLD_SECONDS
        self._set(False, reason)

    def _set(self, accepting: bool, reason: str) -> bool:
        if accepting != self.accepting:
            if accepting:
                log.warning("storage has room again: accepting events")
            else:
                log.error("storage cannot take more events: %s", reason)
        self.accepting = accepting
        self.reason = reason
        return accepting


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
