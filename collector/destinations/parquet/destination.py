"""The parquet destination: each batch becomes one file per (table, source, date), made durable
(fsync'ed, or uploaded) before the batch counts as delivered.

Layout, Hive-style, a directory per table so that each is one external table:
``<table>/source=<source>/date=<YYYY-MM-DD>/part-<first seq>-<digest>.parquet``, the date being
the UTC day the collector received the event. A file's name comes from the events it holds, so a
batch sent again after a failure rewrites the same files instead of adding copies; after a crash
the engine may cut batches differently, and the files then hold copies (queries deduplicate on
``id``, the messageId).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from collector.destinations.base import DELIVERED, BuildContext, Destination, Envelope, Outcome, retry
from collector.destinations.parquet.config import ParquetConfig
from collector.destinations.parquet.tables import iso_ms, rows_for, source_name


class ParquetDestination(Destination):
    """Write events as Parquet files, one table per event type or name as in Segment's warehouse
    schema, partitioned by source and day, to a local directory or an S3-compatible bucket."""

    Config = ParquetConfig
    display_name = "Parquet"
    config: ParquetConfig

    def __init__(self, name: str, config: ParquetConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._store: Any = None
        self._opened = False
        self._opening = asyncio.Lock()  # one open: it empties the staging directory

    async def start(self) -> None:
        from collector.destinations.parquet.stores import store_for

        # Opened by the first send, so that a directory or bucket not ready yet is a retry there.
        self._store = store_for(self.config.path, self.config.s3)

    async def send(self, batch: list[Envelope]) -> Outcome:
        try:
            if not self._opened:
                async with self._opening:
                    if not self._opened:
                        await asyncio.to_thread(self._store.open)
                        self._opened = True
            # Rows, Parquet encoding and the write all happen off the event loop.
            await asyncio.to_thread(self._write, batch)
        except OSError as error:  # the disk or the object store: both may recover
            return retry(f"{type(error).__name__}: {error}")
        return DELIVERED

    def _write(self, batch: list[Envelope]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from collector.destinations.parquet.columns import arrow_table

        compression = None if self.config.compression == "none" else self.config.compression
        for key, rows in files_for(batch).items():
            sink = pa.BufferOutputStream()
            pq.write_table(arrow_table(rows), sink, compression=compression)
            self._store.put(key, sink.getvalue().to_pybytes())


def files_for(batch: list[Envelope]) -> dict[str, list[dict[str, Any]]]:
    """The batch's rows by the file (key) each goes to; every row stamped with ``uuid_ts``."""
    uuid_ts = iso_ms(int(datetime.now(timezone.utc).timestamp() * 1000))
    groups: dict[tuple[str, str, str], list[tuple[Envelope, dict[str, Any]]]] = defaultdict(list)
    for envelope in batch:
        day = datetime.fromtimestamp(envelope.received_ms / 1000, timezone.utc).strftime("%Y-%m-%d")
        source = source_name(envelope.source)
        for table, row in rows_for(envelope.event, envelope.received_ms):
            row["uuid_ts"] = uuid_ts
            groups[(table, source, day)].append((envelope, row))
    files = {}
    for (table, source, day), members in groups.items():
        digest = hashlib.blake2b(digest_size=8)
        for envelope, row in members:
            digest.update(f"{envelope.seq}:{row.get('id')}\n".encode())
        name = f"part-{members[0][0].seq:012d}-{digest.hexdigest()}.parquet"
        files[f"{table}/source={source}/date={day}/{name}"] = [row for _, row in members]
    return files
