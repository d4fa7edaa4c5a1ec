"""The SQLite file: tables, pragmas, and how connections to it are opened."""

from __future__ import annotations

import os
import sqlite3

import aiosqlite

SCHEMA_VERSION = 1
DB_FILE = "events.db"

# One append-only table holds each accepted event once, whatever the number of destinations.
# `seq` is AUTOINCREMENT so that a number is never reused, even after retention empties the
# table: every destination's cursor is a `seq`.
_TABLES = """
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    source     TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    received   INTEGER NOT NULL,            -- ms since the epoch, server clock
    body       BLOB    NOT NULL             -- the enriched event, compact JSON
);
-- Dedup by messageId is not an index here but a file of its own: see dedup.py.
DROP INDEX IF EXISTS events_by_message_id;

-- The last seq each destination has delivered (or dead-lettered) in order.
CREATE TABLE IF NOT EXISTS cursors (
    destination TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    updated     INTEGER NOT NULL
) WITHOUT ROWID;

-- Events a destination gave up on, with the reason; kept until replayed or purged.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    destination TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    received    INTEGER NOT NULL,
    failed      INTEGER NOT NULL,           -- ms since the epoch
    reason      TEXT    NOT NULL,
    body        BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_destination ON dead_letters (destination, id);

-- Samples of "every destination has every event up to seq" over time; retention deletes what
-- was fully delivered longer ago than storage.retention.
CREATE TABLE IF NOT EXISTS delivered_marks (
    at  INTEGER PRIMARY KEY,                -- ms since the epoch
    seq INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


def db_path(directory: str) -> str:
    return os.path.join(directory, DB_FILE)


def _pragmas(sync: str) -> list[str]:
    return [
        # auto_vacuum must be chosen before the first table exists; it lets retention give pages back.
        "PRAGMA auto_vacuum = INCREMENTAL",
        "PRAGMA journal_mode = WAL",
        f"PRAGMA synchronous = {'FULL' if sync == 'full' else 'NORMAL'}",
        "PRAGMA busy_timeout = 10000",
        # We run checkpoints ourselves (see maintenance.py), never inside the writer's commit.
        "PRAGMA wal_autocheckpoint = 0",
        f"PRAGMA journal_size_limit = {64 * 1024 * 1024}",
        "PRAGMA cache_size = -32000",
    ]


def open_writer(directory: str, sync: str) -> sqlite3.Connection:
    """The log writer process's connection (collector/log/writer_process.py); creates the schema."""
    os.makedirs(directory, exist_ok=True)
    # The writer prepares one statement per chunk size (see writer.py): room for all of them.
    conn = sqlite3.connect(db_path(directory), isolation_level=None, check_same_thread=False, cached_statements=1024)
    for pragma in _pragmas(sync):
        conn.execute(pragma)
    conn.executescript(_TABLES)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if int(version) > SCHEMA_VERSION:
        conn.close()
        raise RuntimeError(
            f"{db_path(directory)} was written by a newer collector (schema {version}); "
            f"this one knows schema {SCHEMA_VERSION}"
        )
    return conn


async def open_reader(directory: str, sync: str) -> aiosqlite.Connection:
    """A reading connection for the event loop (open the writer first: it creates the schema)."""
    conn = await aiosqlite.connect(db_path(directory), isolation_level=None)
    for pragma in _pragmas(sync):
        await conn.execute(pragma)
    return conn
