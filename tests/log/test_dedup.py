"""The dedup file: a cache of the window's messageIds that a crash, a deletion or damage can only
cost a rebuild from the log, never a missed duplicate."""

import os
import signal
import sqlite3
import time

from collector.config.units import Duration
from collector.log.dedup import DedupStore, dedup_path, fingerprint
from collector.log.event_log import EventLog
from collector.log.schema import open_writer
from tests.log.test_event_log import row, storage


async def stored_ids(log: EventLog) -> list[str]:
    return [body.decode() for _, _, _, body in await log.read_after(0, 1000)]


async def test_the_log_has_no_message_id_index(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    await log.close()
    conn = sqlite3.connect(tmp_path / "data" / "events.db")
    indexes = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    conn.close()
    assert not [name for name in indexes if "message" in name]


async def test_a_deleted_dedup_file_is_rebuilt_from_the_log(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    await log.append("web", [row("a"), row("b")])
    await log.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(dedup_path(str(tmp_path / "data")) + suffix):
            os.unlink(dedup_path(str(tmp_path / "data")) + suffix)

    log = EventLog(storage(tmp_path))
    await log.open()
    try:
        await log.append("web", [row("a"), row("c")])
        assert len(await stored_ids(log)) == 3
    finally:
        await log.close()


async def test_ids_the_dedup_file_had_not_committed_are_read_back_after_a_crash(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    try:
        await log.append("web", [row("a")])
        # The dedup file commits about once a second: kill its writer before it does.
        process = log.writer._process
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        await log.append("web", [row("a"), row("b")])  # a new writer process, caught up from the log
        assert len(await stored_ids(log)) == 2
    finally:
        await log.close()


async def test_a_damaged_dedup_file_is_thrown_away_and_rebuilt(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    await log.append("web", [row("a")])
    await log.close()
    path = dedup_path(str(tmp_path / "data"))
    with open(path, "r+b") as f:
        f.write(b"this is not an SQLite file" * 200)

    log = EventLog(storage(tmp_path))
    await log.open()
    try:
        await log.append("web", [row("a"), row("b")])
        assert len(await stored_ids(log)) == 2
    finally:
        await log.close()


async def test_repeats_within_one_group_and_across_groups(tmp_path):
    log = EventLog(storage(tmp_path))
    await log.open()
    try:
        await log.append("web", [row("a"), row("a"), row("b")])
        await log.append("web", [row("b"), row("c")])
        await log.append("app", [row("a", source="app")])  # another source: not a repeat
        assert len(await stored_ids(log)) == 4
    finally:
        await log.close()


def test_spans_older_than_the_window_are_dropped(tmp_path):
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    store = DedupStore(directory, window_ms=400)  # spans of 100 ms
    store.open(log)
    now = int(time.time() * 1000)
    store.record([("web", "old", now - 1000), ("web", "new", now)], upto_seq=2)
    store.commit()
    assert store.seen("web", ["old", "new"], now - 400) == {"new"}
    for conn in (store.conn, store.index):
        tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ids_%'")]
        assert len(tables) == 1
    assert len(store.spans) == 1
    store.close()
    log.close()


def test_the_window_is_exact_within_a_span(tmp_path):
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    store = DedupStore(directory, window_ms=int(Duration(3600) * 1000))
    store.open(log)
    now = int(time.time() * 1000)
    store.record([("web", "m", now - 10_000)], upto_seq=1)
    assert store.seen("web", ["m"], now - 20_000) == {"m"}
    assert store.seen("web", ["m"], now - 5_000) == set()  # same span, but older than asked
    store.close()
    log.close()


def test_covered_seq_survives_reopening(tmp_path):
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    store = DedupStore(directory, window_ms=60_000)
    store.open(log)
    store.record([("web", "m", int(time.time() * 1000))], upto_seq=7)
    store.close()
    again = DedupStore(directory, window_ms=60_000)
    again.open(log)
    assert again.covered_seq == 7
    assert again.seen("web", ["m"], 0) == {"m"}
    again.close()
    log.close()


async def test_a_large_rebuild_is_announced(tmp_path, capfd, monkeypatch):
    from collector.log import dedup
    monkeypatch.setattr(dedup, "_ANNOUNCE_REBUILD", 3)
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    now = int(time.time() * 1000)
    log.executemany("INSERT INTO events (source, message_id, received, body) VALUES ('web', ?, ?, x'7b7d')",
                    [(f"m{i}", now) for i in range(5)])
    store = DedupStore(directory, window_ms=60_000)
    assert store.open(log) == 5
    assert "rebuilding dedup.db: reading back the ids of 5 events" in capfd.readouterr().err
    assert store.seen("web", ["m0", "m4", "new"], now - 60_000) == {"m0", "m4"}
    store.close()
    log.close()


def test_a_hit_needs_all_128_bits_of_the_fingerprint(tmp_path):
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    store = DedupStore(directory, window_ms=60_000)
    store.open(log)
    now = int(time.time() * 1000)
    fp, chk = fingerprint("web", "m")
    store.index.execute(f"CREATE TABLE ids_{now // store.span_ms} (fp INTEGER PRIMARY KEY, chk INTEGER, received INTEGER)")
    store.spans.append(now // store.span_ms)
    store.index.execute(f"INSERT INTO ids_{now // store.span_ms} VALUES (?, ?, ?)", (fp, chk ^ 1, now))
    assert store.seen("web", ["m"], now - 60_000) == set()  # same first half: another id
    store.index.execute(f"UPDATE ids_{now // store.span_ms} SET chk = ?", (chk,))
    assert store.seen("web", ["m"], now - 60_000) == {"m"}
    assert store.seen("app", ["m"], now - 60_000) == set()  # the source is part of it
    store.close()
    log.close()


def test_the_index_in_memory_is_loaded_from_the_file(tmp_path):
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    store = DedupStore(directory, window_ms=60_000)
    store.open(log)
    now = int(time.time() * 1000)
    store.record([("web", f"m{i}", now - i) for i in range(1000)] + [("web", "m0", now)], upto_seq=1001)
    store.close()
    again = DedupStore(directory, window_ms=60_000)
    assert again.open(log) == 0  # nothing read back from the log
    assert again.seen("web", [f"m{i}" for i in range(0, 1200, 100)], now - 60_000) == {f"m{i}" for i in range(0, 1000, 100)}
    (count,) = again.index.execute(f"SELECT count(*) FROM ids_{now // again.span_ms}").fetchone()
    assert count <= 1000  # m0 twice on disk, once in memory
    again.close()
    log.close()


def test_a_dedup_file_of_the_earlier_format_is_rebuilt_from_the_log(tmp_path):
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    now = int(time.time() * 1000)
    log.execute("INSERT INTO events (source, message_id, received, body) VALUES ('web', 'a', ?, x'7b7d')", (now,))
    old = sqlite3.connect(dedup_path(directory))
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    old.execute("INSERT INTO meta VALUES ('covered_seq', 1)")  # it claims to hold 'a', in a table now ignored
    old.execute("CREATE TABLE seen_1 (source TEXT, message_id TEXT, received INTEGER)")
    old.commit()
    old.close()
    store = DedupStore(directory, window_ms=60_000)
    assert store.open(log) == 1
    assert store.seen("web", ["a"], now - 60_000) == {"a"}
    store.close()
    log.close()
