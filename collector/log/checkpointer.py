"""Copying the WAL back into the database beside the writer, not inside it.

Under steady load the writer empties the WAL once it passes a few MB (a TRUNCATE checkpoint
between two commits, see LogWriter._restart_wal_if_large). That checkpoint copies every frame not
copied yet, and while it runs no group is written. Measured under 100-event batches, the writer
spent 18% of its time there, when a PASSIVE checkpoint every few seconds had copied almost nothing.

This thread, in the writer process, runs a PASSIVE checkpoint on a connection of its own as soon
as the WAL holds a little: SQLite releases the GIL while it copies, so the copying happens on the
other core while the writer goes on appending, and the writer's TRUNCATE only has the last few
frames left to copy.
"""

from __future__ import annotations

import sqlite3
import threading

from collector.log import schema
from collector.log.capacity import file_size

# A checkpoint is started once the WAL holds this much that may not be copied yet.
DEFAULT_THRESHOLD_BYTES = 512 * 1024
DEFAULT_POLL_SECONDS = 0.02


class Checkpointer:
    def __init__(self, directory: str, sync: str, *, threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
                 poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        self.path = schema.db_path(directory)
        self.wal_path = self.path + "-wal"
        self.sync = sync
        self.threshold_bytes = threshold_bytes
        self.poll_seconds = poll_seconds
        self.checkpoints = 0
        self.errors: list[str] = []  # the last few, for the writer to pass on as notes
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.sync == 'full' else 'NORMAL'}")
        except sqlite3.Error as error:
            self._note(f"WAL checkpointer could not open the log: {error}")
            return
        try:
            while not self._stopping.wait(self.poll_seconds):
                # A WAL whose frames were all copied is written again from its start, keeping its
                # size: a checkpoint of it then finds little to do, which costs little.
                if file_size(self.wal_path) < self.threshold_bytes:
                    continue
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as error:
                    self._note(f"WAL checkpoint failed: {error}")
        finally:
            conn.close()

    def _note(self, message: str) -> None:
        if len(self.errors) < 10:
            self.errors.append(message)
