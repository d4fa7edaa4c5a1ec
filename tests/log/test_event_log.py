import asyncio
import sqlite3
import time

import pytest

from collector.config.model import StorageConfig
from collector.config.units import Duration
from collector.log.errors import StorageUnavailable
from collector.log.event_log import EventLog
from collector.log.schema import db_path


def storage(tmp_path, **overrides) -> StorageConfig:
    return StorageConfig(path=str(tmp_path / "data"), **overrides)


def row(message_id: str, source: str = "web", received_ms: int | None = None, body: bytes | None = None):
    received_ms = int(time.time() * 1000) if received_ms is None else received_ms
    return (source, message_id, received_ms, body or b'{"messageId":"%s"}' % message_id.encode())


@pytest.fixture
async def event_log(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    yield log
    await log.close()


async def test_appended_events_are_readable_in_order(event_log):
    await event_log.append("web", [row("a"), row("b")])
    await event_log.append("web", [row("c")])
    rows = await event_log.read_after(0, 10)
    assert [r[3] for r in rows] == [b'{"messageId":"a"}', b'{"messageId":"b"}', b'{"messageId":"c"}']
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert await event_log.read_after(rows[1][0], 10) == [rows[2]]


async def test_concurrent_appends_share_commits(tmp_path):
    commits = []
    log = EventLog(storage(tmp_path), on_commit=commits.append)
    await log.open()
    try:
        await asyncio.gather(*(log.append("web", [row(f"m{i}")]) for i in range(200)))
        assert sum(sum(s.committed.values()) for s in commits) == 200
        assert len(commits) < 20, f"200 concurrent appends took {len(commits)} commits"
    finally:
        await log.close()


async def test_same_message_id_from_one_source_is_stored_once(tmp_path):
    commits = []
    log = EventLog(storage(tmp_path), on_commit=commits.append)
    await log.open()
    try:
        await log.append("web", [row("dup"), row("dup")])  # within one group
        await log.append("web", [row("dup")])  # in a later group
        await log.append("app", [row("dup", source="app")])  # another source: its own
        rows = await log.read_after(0, 10)
        assert [(r[1], r[3]) for r in rows] == [("web", b'{"messageId":"dup"}'), ("app", b'{"messageId":"dup"}')]
        assert sum(s.duplicates.get("web", 0) for s in commits) == 2
    finally:
        await log.close()


async def test_dedup_window_expires(tmp_path):
    log = EventLog(storage(tmp_path, dedup_window=Duration(60)))
    await log.open()
    try:
        now = int(time.time() * 1000)
        await log.append("web", [row("m", received_ms=now - 120_000)])
        await log.append("web", [row("m", received_ms=now - 30_000)])  # 90 s later: outside the window
        await log.append("web", [row("m", received_ms=now)])  # 30 s later: inside
        assert len(await log.read_after(0, 10)) == 2
    finally:
        await log.close()


async def test_events_cursors_and_dedup_survive_a_restart(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    await log.append("web", [row("a"), row("b")])
    await log.set_cursor("dest", 1)
    await log.close()

    log = EventLog(storage(tmp_path))
    await log.open()
    try:
        await log.append("web", [row("a")])
        assert len(await log.read_after(0, 10)) == 2
        assert await log.load_cursors() == {"dest": 1}
        assert await log.newest_seq() == 2
    finally:
        await log.close()


async def test_refuses_when_max_bytes_is_reached_and_recovers(tmp_path):
    log = EventLog(storage(tmp_path, max_bytes=1))
    await log.open()
    try:
        assert not log.capacity.accepting
        assert "storage.max_bytes" in log.capacity.reason
        with pytest.raises(StorageUnavailable):
            await log.append("web", [row("a")])
        log.capacity.max_bytes = 0
        assert log.capacity.check()
        await log.append("web", [row("a")])
        assert len(await log.read_after(0, 10)) == 1
    finally:
        await log.close()


async def test_refuses_below_min_free_space(tmp_path):
    log = EventLog(storage(tmp_path, min_free_bytes=1 << 62))
    await log.open()
    try:
        assert not log.capacity.accepting
        assert "min_free_bytes" in log.capacity.reason
    finally:
        await log.close()


async def test_a_failed_commit_fails_its_waiters_and_the_file_stays_sound(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    try:
        await log.append("web", [row("ok")])
        with pytest.raises(StorageUnavailable):
            await log.append("web", [("web", "bad", 1, ["not", "bindable"])])  # the group fails
        await log.append("web", [row("after")])
        assert [r[3] for r in await log.read_after(0, 10)] == [b'{"messageId":"ok"}', b'{"messageId":"after"}']
    finally:
        await log.close()
    with sqlite3.connect(db_path(str(tmp_path / "data"))) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_dead_letters_keep_the_event_and_reason(event_log):
    await event_log.append("web", [row("a")])
    seq, source, received, body = (await event_log.read_after(0, 1))[0]
    await event_log.dead_letter("dest", [(seq, source, received, body)], "HTTP 400: bad")
    assert await event_log.count_dead_letters("dest") == 1
    assert await event_log.count_dead_letters("other") == 0
