import asyncio
import os
import time

from collector.config.model import StorageConfig
from collector.log import writer
from collector.log.event_log import EventLog
from collector.log.maintenance import Maintenance


async def wal_peak_under_continuous_writes(tmp_path, restart_bytes: int, monkeypatch) -> int:
    """Writes that never pause (one group always waiting behind the one committing), with passive
    checkpoints running beside them as maintenance does: returns the WAL's peak size."""
    monkeypatch.setattr(writer, "WAL_RESTART_BYTES", restart_bytes)
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    maintenance = Maintenance(log, lambda: None, dead_letter_retention=3600)
    wal = tmp_path / "data" / "events.db-wal"
    peak = 0
    body = b"x" * 1000

    async def client(n: int) -> None:
        for batch in range(40):
            now = int(time.time() * 1000)
            await log.append("web", [("web", f"{n}-{batch}-{i}", now, body) for i in range(100)])

    async def checkpoints() -> None:
        while True:
            await maintenance.checkpoint()
            await asyncio.sleep(0.005)

    checkpointing = asyncio.create_task(checkpoints())
    clients = asyncio.gather(*(client(n) for n in range(4)))
    try:
        while not clients.done():
            log.writer._next_wal_check = 0  # look at every commit in this test
            peak = max(peak, os.path.getsize(wal) if wal.exists() else 0)
            await asyncio.sleep(0.002)
        await clients
        assert len(await log.read_after(0, 20000)) == 16000
    finally:
        checkpointing.cancel()
        await log.close()
    return peak


async def test_the_wal_is_emptied_under_continuous_writes(tmp_path, monkeypatch):
    # 16 MB of events go through; the writer must start the WAL over at the threshold.
    assert await wal_peak_under_continuous_writes(tmp_path / "a", 1024 * 1024, monkeypatch) < 4 * 1024 * 1024


async def test_without_the_restart_the_wal_would_grow(tmp_path, monkeypatch):
    # The reason for the restart: passive checkpoints alone never get the WAL started over.
    assert await wal_peak_under_continuous_writes(tmp_path / "b", 10**12, monkeypatch) > 8 * 1024 * 1024
