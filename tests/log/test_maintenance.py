import time

import pytest

from collector.config.model import StorageConfig
from collector.config.units import Duration
from collector.log.event_log import EventLog
from collector.log.maintenance import Maintenance
from tests.log.test_event_log import row


@pytest.fixture
async def event_log(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data"), retention=Duration(0), dedup_window=Duration(0)))
    await log.open()
    yield log
    await log.close()


def old_rows(count: int, prefix: str = "m"):
    old = int(time.time() * 1000) - 10_000
    return [row(f"{prefix}{i}", received_ms=old, body=b"x" * 2000) for i in range(count)]


async def test_retention_removes_only_what_every_destination_has(event_log):
    await event_log.append("web", old_rows(100))
    delivered = {"upto": 40}
    maintenance = Maintenance(event_log, lambda: delivered["upto"], dead_letter_retention=3600)
    assert await maintenance.apply_retention() == 40
    remaining = await event_log.read_after(0, 1000)
    assert remaining[0][0] == 41 and len(remaining) == 60
    delivered["upto"] = 100
    assert await maintenance.apply_retention() == 60
    assert await event_log.read_after(0, 1000) == []


async def test_retention_waits_for_the_retention_period(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data"), retention=Duration(3600), dedup_window=Duration(0)))
    await log.open()
    try:
        await log.append("web", old_rows(10))
        maintenance = Maintenance(log, lambda: 10, dead_letter_retention=3600)
        assert await maintenance.apply_retention() == 0
        assert len(await log.read_after(0, 100)) == 10
    finally:
        await log.close()


async def test_events_stay_for_the_dedup_window(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data"), retention=Duration(0), dedup_window=Duration(3600)))
    await log.open()
    try:
        await log.append("web", old_rows(10))
        maintenance = Maintenance(log, lambda: 10, dead_letter_retention=3600)
        assert await maintenance.apply_retention() == 0
        await log.append("web", old_rows(10))  # still recognised as duplicates
        assert len(await log.read_after(0, 100)) == 10
    finally:
        await log.close()


async def test_sequence_numbers_are_never_reused_after_the_log_empties(event_log):
    await event_log.append("web", old_rows(5))
    await Maintenance(event_log, lambda: 5, dead_letter_retention=3600).apply_retention()
    await event_log.append("web", [row("new")])
    assert [r[0] for r in await event_log.read_after(0, 10)] == [6]


async def test_retention_gives_space_back_to_the_filesystem(event_log):
    await event_log.append("web", old_rows(3000))
    conn = event_log.maintenance_conn
    pages_before = (await conn.execute_fetchall("PRAGMA page_count"))[0][0]
    await Maintenance(event_log, lambda: 3000, dead_letter_retention=3600).apply_retention()
    pages_after = (await conn.execute_fetchall("PRAGMA page_count"))[0][0]
    freelist = (await conn.execute_fetchall("PRAGMA freelist_count"))[0][0]
    assert pages_after < pages_before / 10, (pages_before, pages_after)
    assert freelist == 0


async def test_checkpoint_keeps_the_wal_bounded(event_log, tmp_path):
    import os

    wal = tmp_path / "data" / "events.db-wal"
    maintenance = Maintenance(event_log, lambda: None, dead_letter_retention=3600)
    sizes = []
    for batch in range(10):
        await event_log.append("web", old_rows(500, prefix=f"b{batch}-"))
        await maintenance.checkpoint()
        sizes.append(os.path.getsize(wal))
    # Without checkpoints the WAL would hold all 10 x 1 MB; with them it is reused from the start.
    assert max(sizes) < 4 * 1024 * 1024, sizes


async def test_old_dead_letters_are_purged(event_log):
    await event_log.append("web", [row("a")])
    stored = (await event_log.read_after(0, 1))[0]
    await event_log.dead_letter("dest", [stored], "bad")
    maintenance = Maintenance(event_log, lambda: None, dead_letter_retention=0)
    time.sleep(0.01)
    await maintenance.apply_retention()
    assert await event_log.count_dead_letters("dest") == 0
