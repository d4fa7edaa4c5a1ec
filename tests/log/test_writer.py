import asyncio
import fcntl
import os
import signal
import time

from collector.config.model import StorageConfig
from collector.log import writer
from collector.log.event_log import EventLog
from collector.log.errors import StorageUnavailable
from collector.log.maintenance import Maintenance
from tests.support.process import CollectorProcess, child_pids


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
        for batch in range(80):
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
            peak = max(peak, os.path.getsize(wal) if wal.exists() else 0)
            await asyncio.sleep(0.002)
        await clients
        assert len(await log.read_after(0, 40000)) == 32000
    finally:
        checkpointing.cancel()
        await log.close()
    return peak


async def test_the_wal_is_emptied_under_continuous_writes(tmp_path, monkeypatch):
    # 32 MB of events go through; the writer must start the WAL over at the threshold.
    assert await wal_peak_under_continuous_writes(tmp_path / "a", 1024 * 1024, monkeypatch) < 4 * 1024 * 1024


async def test_without_the_restart_the_wal_would_grow(tmp_path, monkeypatch):
    # The reason for the restart: passive checkpoints alone never get the WAL started over.
    assert await wal_peak_under_continuous_writes(tmp_path / "b", 10**12, monkeypatch) > 6 * 1024 * 1024


# -- the log writer process ---------------------------------------------------------------------


async def test_a_killed_writer_process_is_started_again(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    try:
        now = int(time.time() * 1000)
        await log.append("web", [("web", "before", now, b"{}")])
        first = log.writer._process
        first.kill()
        await first.wait()
        await log.append("web", [("web", "after", now, b"{}")])
        assert log.writer._process.pid != first.pid
        assert len(await log.read_after(0, 10)) == 2
    finally:
        await log.close()


async def test_a_writer_process_dying_under_a_group_fails_only_that_group(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    try:
        now = int(time.time() * 1000)
        first = log.writer._process
        os.kill(first.pid, signal.SIGKILL)  # not reaped yet: the writer finds out by writing to it
        try:
            await log.append("web", [("web", "maybe", now, b"{}")])
        except StorageUnavailable as error:
            assert "log writer process" in str(error)
        await log.append("web", [("web", "after", now, b"{}")])
        assert log.writer._process.pid != first.pid
        assert [row[3] for row in await log.read_after(0, 10)][-1] == b"{}"
    finally:
        await log.close()


async def test_the_writer_process_stops_with_the_log(tmp_path):
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    process = log.writer._process
    await log.close()
    assert process.returncode == 0


def test_the_writer_process_does_not_outlive_a_killed_collector(tmp_path):
    collector = CollectorProcess(tmp_path, {"sources": {"web": {"write_key": "wk"}}}).start()
    children = child_pids(collector.proc.pid)
    assert children, "the collector runs no log writer process"
    collector.kill()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


def test_sigterm_to_the_whole_process_group_still_finishes_cleanly(tmp_path):
    # systemd sends SIGTERM to every process of the service: the writer must not die before the
    # collector has committed what it acknowledged.
    collector = CollectorProcess(tmp_path, {"sources": {"web": {"write_key": "wk"}}}).start()
    children = child_pids(collector.proc.pid)
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    assert all(_alive(pid) for pid in children)
    assert collector.stop() == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_groups_go_to_the_writer_process_through_an_enlarged_pipe(tmp_path):
    with open("/proc/sys/fs/pipe-max-size") as f:
        allowed = int(f.read())
    log = EventLog(StorageConfig(path=str(tmp_path / "data")))
    await log.open()
    try:
        fd = os.open(f"/proc/{log.writer._process.pid}/fd/0", os.O_RDONLY | os.O_NONBLOCK)
        try:
            size = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        finally:
            os.close(fd)
        assert size == min(allowed, 4 * 1024 * 1024), size
        # A group larger than the pipe still arrives whole.
        now = int(time.time() * 1000)
        await log.append("web", [("web", f"big-{i}", now, b"x" * 1000) for i in range(3000)])
        assert len(await log.read_after(0, 5000)) == 3000
    finally:
        await log.close()


def test_small_groups_wait_for_fewer_unanswered_groups_than_large_ones():
    # Single-event groups take 2 slots at most, so that requests arriving meanwhile join the
    # pending group; a 100-event batch goes as soon as one of 4 slots is free.
    assert writer.Writer._slots(writer._Group(event_count=1)) == writer._MAX_IN_FLIGHT_SMALL == 2
    assert writer.Writer._slots(writer._Group(event_count=99)) == 2
    assert writer.Writer._slots(writer._Group(event_count=100)) == writer._MAX_IN_FLIGHT == 4
