"""The WAL checkpointer thread of the writer process: it copies the WAL back into the database
while the writer goes on, so that the writer's own restart of the WAL has little left to copy."""

import os
import sqlite3
import time

from collector.log import schema
from collector.log.checkpointer import Checkpointer
from collector.log.event_log import EventLog
from tests.log.test_event_log import storage


def write_without_checkpoints(directory: str, rows: int) -> sqlite3.Connection:
    conn = schema.open_writer(directory, "full")  # wal_autocheckpoint = 0: nothing else copies
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (source, message_id, received, body) VALUES ('web', ?, 0, ?)",
                     [(f"m{i}", b"x" * 1000) for i in range(rows)])
    conn.execute("COMMIT")
    return conn


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_a_wal_past_the_threshold_is_copied_into_the_database(tmp_path):
    directory = str(tmp_path)
    conn = write_without_checkpoints(directory, 2000)  # about 2 MB, all of it in the WAL
    db = schema.db_path(directory)
    before = os.path.getsize(db)
    checkpointer = Checkpointer(directory, "full", threshold_bytes=256 * 1024, poll_seconds=0.01)
    checkpointer.start()
    try:
        assert wait_for(lambda: os.path.getsize(db) > before + 1024 * 1024)
        assert checkpointer.checkpoints >= 1
        # What is left for the writer's own checkpoint: nothing.
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, frames) == (0, copied)
    finally:
        checkpointer.stop()
        conn.close()
    assert checkpointer.take_errors() == []


def test_a_small_wal_is_left_alone(tmp_path):
    directory = str(tmp_path)
    conn = write_without_checkpoints(directory, 50)
    checkpointer = Checkpointer(directory, "full", threshold_bytes=4 * 1024 * 1024, poll_seconds=0.01)
    checkpointer.start()
    time.sleep(0.2)
    checkpointer.stop()
    conn.close()
    assert checkpointer.checkpoints == 0


def test_a_log_it_cannot_open_is_reported_not_raised(tmp_path):
    checkpointer = Checkpointer(str(tmp_path / "missing" / "dir"), "full", poll_seconds=0.01)
    checkpointer.start()
    checkpointer.stop()
    assert [e for e in checkpointer.take_errors() if "could not open" in e]


async def test_the_writer_process_checkpoints_beside_its_commits(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    db = schema.db_path(str(tmp_path / "data"))
    before = os.path.getsize(db)
    try:
        now = int(time.time() * 1000)
        # About 1.5 MB: under the writer's own WAL restart (4 MB), over the checkpointer's threshold.
        await log.append("web", [("web", f"m{i}", now, b"x" * 1000) for i in range(1500)])
        assert wait_for(lambda: os.path.getsize(db) > before + 1024 * 1024)
    finally:
        await log.close()
