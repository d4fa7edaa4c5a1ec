"""The dedup file: a cache of the window's messageIds that a crash, a deletion or damage can only
cost a rebuild from the log, never a missed duplicate."""

import os
import signal
import sqlite3
import time

import pytest

from collector.config.units import Duration
from collector.log import dedup
from collector.log.dedup import DedupStore, dedup_path, fingerprint
from collector.log.event_log import EventLog
from collector.log.schema import open_writer
from tests.log.test_event_log import row, storage


@pytest.fixture
def disk(tmp_path):
    """The data directory and the log's writing connection, closed after the test."""
    directory = str(tmp_path / "data")
    log = open_writer(directory, "full")
    yield directory, log
    log.close()


def opened(directory: str, log: sqlite3.Connection, window_ms: int, max_ids: int = 0) -> DedupStore:
    store = DedupStore(directory, window_ms=window_ms, max_ids=max_ids)
    store.open(log)
    return store


async def stored_ids(log: EventLog) -> list[str]:
    return [body.decode() for _, _, _, body in await log.read_after(0, 1000)]


def remove_dedup_file(directory: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(dedup_path(directory) + suffix):
            os.unlink(dedup_path(directory) + suffix)


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
    remove_dedup_file(str(tmp_path / "data"))

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


def index_rows(store: DedupStore) -> int:
    return store.index.execute("SELECT count(*) FROM ids").fetchone()[0]


def test_spans_older_than_the_window_are_dropped_from_the_file_and_swept_from_memory(disk):
    directory, log = disk
    store = opened(directory, log, 400)  # spans of 100 ms
    now = int(time.time() * 1000)
    store.record([("web", "old", now - 1000), ("web", "new", now)], upto_seq=2)
    assert store.ids == index_rows(store) == 2
    store.commit()
    assert store.seen("web", ["old", "new"], now - 400) == {"new"}
    tables = [n for (n,) in store.conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ids_%'")]
    assert len(tables) == len(store.spans) == 1
    # With spans of 100 ms, each commit sweeps the whole index.
    assert store.ids == index_rows(store) == 1
    assert store.seen("web", ["new"], 0) == {"new"}
    store.close()


def test_a_long_window_is_swept_a_slice_per_commit(disk):
    directory, log = disk
    store = opened(directory, log, 86_400_000)
    assert store._slices_per_commit == 1
    now = int(time.time() * 1000)
    store.record([("web", f"old{i}", now - 90_000_000) for i in range(100)] + [("web", "new", now)], upto_seq=101)
    first = store.expire(now - 86_400_000, slices=1)
    assert first < 10  # one slice: about 100 / 256 of them
    assert first + store.expire(now - 86_400_000) == 100  # all the slices: every old one
    assert store.ids == index_rows(store) == 1
    store.close()


def test_a_lookup_is_one_probe_whatever_the_number_of_spans(disk):
    directory, log = disk
    store = opened(directory, log, 4 * 3600 * 1000)  # spans of an hour
    now = int(time.time() * 1000)
    store.record([("web", f"m{hour}", now - hour * 3600 * 1000) for hour in range(4)], upto_seq=4)
    assert len(store.spans) >= 4
    statements = []
    store.index.set_trace_callback(statements.append)
    assert store.seen("web", ["m0", "m3", "new"], now - 4 * 3600 * 1000) == {"m0", "m3"}
    store.index.set_trace_callback(None)
    assert len([s for s in statements if s.startswith("SELECT")]) == 1
    store.close()


def test_the_window_is_exact_within_a_span(disk):
    directory, log = disk
    store = opened(directory, log, int(Duration(3600) * 1000))
    now = int(time.time() * 1000)
    store.record([("web", "m", now - 10_000)], upto_seq=1)
    assert store.seen("web", ["m"], now - 20_000) == {"m"}
    assert store.seen("web", ["m"], now - 5_000) == set()  # same span, but older than asked
    store.close()


def test_covered_seq_survives_reopening(disk):
    directory, log = disk
    store = opened(directory, log, 60_000)
    store.record([("web", "m", int(time.time() * 1000))], upto_seq=7)
    store.close()
    again = opened(directory, log, 60_000)
    assert again.covered_seq == 7
    assert again.seen("web", ["m"], 0) == {"m"}
    again.close()


async def test_a_large_rebuild_is_announced(disk, capfd, monkeypatch):
    monkeypatch.setattr(dedup, "_ANNOUNCE_REBUILD", 3)
    directory, log = disk
    now = int(time.time() * 1000)
    log.executemany("INSERT INTO events (source, message_id, received, body) VALUES ('web', ?, ?, x'7b7d')",
                    [(f"m{i}", now) for i in range(5)])
    store = DedupStore(directory, window_ms=60_000)
    assert store.open(log) == 5
    assert "rebuilding dedup.db: reading back the ids of 5 events" in capfd.readouterr().err
    assert store.seen("web", ["m0", "m4", "new"], now - 60_000) == {"m0", "m4"}
    store.close()


def test_a_hit_needs_all_128_bits_of_the_fingerprint(disk):
    directory, log = disk
    store = opened(directory, log, 60_000)
    now = int(time.time() * 1000)
    fp, chk = fingerprint("web", "m")
    store.index.execute("INSERT INTO ids VALUES (?, ?, ?)", (fp, chk ^ 1, now))
    assert store.seen("web", ["m"], now - 60_000) == set()  # same first half: another id
    store.index.execute("UPDATE ids SET chk = ?", (chk,))
    assert store.seen("web", ["m"], now - 60_000) == {"m"}
    assert store.seen("app", ["m"], now - 60_000) == set()  # the source is part of it
    store.close()


def test_the_index_in_memory_is_loaded_from_the_file(disk):
    directory, log = disk
    store = opened(directory, log, 60_000)
    now = int(time.time() * 1000)
    store.record([("web", f"m{i}", now - i) for i in range(1000)] + [("web", "m0", now)], upto_seq=1001)
    store.close()
    again = DedupStore(directory, window_ms=60_000)
    assert again.open(log) == 0  # nothing read back from the log
    assert again.ids == 1000
    assert again.seen("web", [f"m{i}" for i in range(0, 1200, 100)], now - 60_000) == {f"m{i}" for i in range(0, 1000, 100)}
    assert index_rows(again) == 1000  # m0 twice on disk, once in memory
    again.close()


def test_a_dedup_file_of_the_earlier_format_is_rebuilt_from_the_log(disk):
    directory, log = disk
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


def _store_with(directory: str, log: sqlite3.Connection, ids: list[str], now: int) -> DedupStore:
    store = opened(directory, log, 60_000)
    store.record([("web", m, now) for m in ids], upto_seq=len(ids))
    return store


def test_a_clean_stop_leaves_a_snapshot_that_the_next_start_reads_once(disk):
    directory, log = disk
    now = int(time.time() * 1000)
    _store_with(directory, log, [f"m{i}" for i in range(500)], now).close()
    snapshot = os.path.join(directory, dedup.SNAPSHOT_FILE)
    assert os.path.exists(snapshot)
    # Empty the file's tables: what the next start knows can then only come from the snapshot.
    conn = sqlite3.connect(dedup_path(directory))
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ids_%'").fetchall():
        conn.execute(f"DELETE FROM {table}")
    conn.commit()
    conn.close()
    again = opened(directory, log, 60_000)
    assert not os.path.exists(snapshot)
    assert again.seen("web", ["m0", "m499", "new"], now - 60_000) == {"m0", "m499"}
    again.record([("web", "later", now)], upto_seq=501)
    again.close(commit=False)  # a crash: no snapshot, the next start reads the file
    assert not os.path.exists(snapshot)
    third = opened(directory, log, 60_000)
    # Only the (emptied) file is read now; "later" was never committed to it.
    assert third.seen("web", ["m0", "later"], now - 60_000) == set()
    third.close()


def test_ids_recorded_after_a_snapshot_are_read_from_the_file(disk):
    directory, log = disk
    now = int(time.time() * 1000)
    store = _store_with(directory, log, ["a"], now)
    store.close()  # snapshot holds "a"
    # The file gains rows the snapshot does not hold (as if written by a writer that then died
    # after an earlier snapshot was taken): they are read past the snapshot's marks.
    conn = sqlite3.connect(dedup_path(directory))
    (table,) = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ids_%'").fetchone()
    conn.execute(f"INSERT INTO {table} (fp, chk, received) VALUES (?, ?, ?)", (*fingerprint("web", "b"), now))
    conn.commit()
    conn.close()
    again = opened(directory, log, 60_000)
    assert again.seen("web", ["a", "b", "c"], now - 60_000) == {"a", "b"}
    again.close()


def test_a_snapshot_beside_another_dedup_file_is_ignored(disk):
    directory, log = disk
    now = int(time.time() * 1000)
    _store_with(directory, log, ["a"], now).close()
    snapshot = os.path.join(directory, dedup.SNAPSHOT_FILE)
    os.rename(snapshot, snapshot + ".aside")
    remove_dedup_file(directory)  # another dedup.db takes the place of the first
    other = _store_with(directory, log, ["b"], now)
    other.commit()
    other.close(commit=False)
    os.rename(snapshot + ".aside", snapshot)
    again = opened(directory, log, 60_000)
    # The other file's rowids start again at 1: believing the snapshot's marks would skip "b".
    assert again.seen("web", ["a", "b"], now - 60_000) == {"b"}
    again.close()


def test_a_damaged_snapshot_is_ignored(disk):
    directory, log = disk
    now = int(time.time() * 1000)
    _store_with(directory, log, ["a"], now).close()
    with open(os.path.join(directory, dedup.SNAPSHOT_FILE), "r+b") as f:
        f.write(b"not a snapshot" * 300)
    again = opened(directory, log, 60_000)
    assert again.seen("web", ["a"], now - 60_000) == {"a"}  # from the file
    assert not os.path.exists(os.path.join(directory, dedup.SNAPSHOT_FILE))
    again.close()



def test_a_snapshot_of_the_earlier_index_is_ignored(disk):
    directory, log = disk
    now = int(time.time() * 1000)
    store = _store_with(directory, log, ["a"], now)
    file_id = store._file_id
    store.commit()
    store.close(commit=False)
    # What the index of a table per span left at a clean stop: right file id, no table `ids`.
    old = sqlite3.connect(os.path.join(directory, dedup.SNAPSHOT_FILE))
    old.execute("CREATE TABLE ids_1 (fp INTEGER PRIMARY KEY, chk INTEGER, received INTEGER)")
    old.execute("CREATE TABLE snapshot_marks (span INTEGER PRIMARY KEY, upto_rowid INTEGER NOT NULL)")
    # Marks past every row of the file: believed, they would hide "a".
    old.executemany("INSERT INTO snapshot_marks VALUES (?, 1000)", [(span,) for span in store.spans])
    old.execute("CREATE TABLE snapshot_of (file_id INTEGER NOT NULL)")
    old.execute("INSERT INTO snapshot_of VALUES (?)", (file_id,))
    old.commit()
    old.close()
    again = opened(directory, log, 60_000)
    assert again.seen("web", ["a"], now - 60_000) == {"a"}  # from the file, not from the snapshot
    assert not os.path.exists(os.path.join(directory, dedup.SNAPSHOT_FILE))
    again.close()


def capped(disk, max_ids: int, count: int = 3000, every_ms: int = 500) -> tuple[DedupStore, int]:
    """A store with a window of an hour and ``max_ids``, holding ``count`` ids (m0 the oldest,
    one every ``every_ms`` up to now), committed; and that now."""
    store = opened(*disk, 3_600_000, max_ids)
    now = int(time.time() * 1000)
    store.record([("web", f"m{i}", now - (count - i) * every_ms) for i in range(count)], upto_seq=count)
    store.commit()
    return store, now


def test_past_max_ids_the_oldest_ids_are_forgotten_first(disk):
    store, now = capped(disk, max_ids=1000)  # 25 minutes of ids, all within the hour
    assert store.forget_before_ms > now - 3_600_000
    assert "storage.dedup_max_ids (1000)" in store.notes[0]
    # The sweep takes one slice a commit; all of them at once here.
    store.expire(store.since_ms(now))
    assert 800 <= store.ids == index_rows(store) <= 1000  # about 90% of max_ids
    since = store.since_ms(now)
    assert store.seen("web", ["m2999", "m2500"], since) == {"m2999", "m2500"}
    assert store.seen("web", ["m0", "m1000"], since) == set()
    store.close()

    # Kept in the file: a restart does not load the forgotten ids back.
    again = opened(*disk, 3_600_000, max_ids=1000)
    assert again.forget_before_ms == store.forget_before_ms
    assert again.ids <= 1000
    again.close()


def test_under_max_ids_the_whole_window_is_kept(disk):
    store, now = capped(disk, max_ids=5000)
    assert (store.forget_before_ms, store.notes) == (0, [])
    assert store.since_ms(now) == now - 3_600_000
    assert store.seen("web", ["m0"], store.since_ms(now)) == {"m0"}
    store.close()


def test_without_max_ids_a_shortened_window_is_not_kept_after_a_restart(disk):
    store, now = capped(disk, max_ids=1000)
    store.close()
    uncapped = opened(*disk, 3_600_000, max_ids=0)
    assert uncapped.forget_before_ms == 0
    assert uncapped.since_ms(now) == now - 3_600_000
    uncapped.close()
