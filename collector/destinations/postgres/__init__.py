"""Load events into PostgreSQL (or Redshift) in Segment's warehouse schema (asyncpg).

One schema per source (``schema``, default: the source's name snake-cased); tables ``tracks``, one
per event name, ``identifies``, ``users``, ``pages``, ``screens``, ``groups``, ``aliases``
(collector/destinations/postgres/schema.py). Each batch is one load (load.py): COPY into staging
tables, merged on ``id`` in one transaction, so a batch sent again adds no row and a load cut off
leaves nothing behind. Events count as delivered once the COMMIT has returned.

A value that does not fit its column's type is loaded as NULL, logged and counted
(``collector_warehouse_misfit_values_total``); the load goes on. A lost or refused connection, a
deadlock or a full disk is retried; a schema change the server refuses for good (no privilege, too
many columns) rejects the batch with the server's reason.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec

from collector.config.units import ByteSize, Duration
from collector.destinations.base import (
    DELIVERED,
    BatchConfig,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    reject,
    retry,
)
from collector.destinations.postgres.dialect import POSTGRES, REDSHIFT, Dialect
from collector.destinations.postgres.load import LoadResult, NotATable, load
from collector.destinations.postgres.schema import schema_name
from collector.destinations.stream_support import SharedConnection, describe, redact_url

log = logging.getLogger(__name__)


def _bulk_batches() -> BatchConfig:
    return BatchConfig(max_events=10_000, max_bytes=ByteSize(64 * 1024 * 1024), max_wait=Duration(5))


class PostgresConfig(DestinationConfig, tag="postgres", kw_only=True):
    # postgresql://user:password@host:port/database (write the password as ${VAR}); or the parts below.
    dsn: str | None = None
    host: str | None = None
    port: int = 5432
    user: str | None = None
    password: str | None = None
    database: str | None = None
    # One schema for every source's events; default: a schema per source, its name snake-cased.
    schema: str | None = None
    # How long an event may wait before it is loaded: a batch waits at most half of it to fill.
    max_lag: Duration = Duration(10)
    # Redshift's SQL (dialect.py says what differs).
    redshift: bool = False
    batch: BatchConfig = msgspec.field(default_factory=_bulk_batches)
    concurrency: int = 2

    example: ClassVar[dict[str, Any]] = {
        "type": "postgres",
        "dsn": "postgresql://collector:secret@warehouse.internal:5432/analytics",
        "max_lag": 30,
    }

    def __post_init__(self) -> None:
        if self.dsn is None and self.host is None:
            raise ValueError("postgres: set dsn, or host (with user, password, database)")
        if self.dsn is not None and self.host is not None:
            raise ValueError("postgres: set dsn or host, not both")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.max_lag <= 0:
            raise ValueError("max_lag must be positive")
        self.batch.max_wait = Duration(min(self.batch.max_wait, self.max_lag / 2))

    @property
    def dialect(self) -> Dialect:
        return REDSHIFT if self.redshift else POSTGRES

    def where(self) -> str:
        if self.dsn is not None:
            return redact_url(self.dsn)
        return f"{self.host}:{self.port}/{self.database or ''}"


# SQLSTATE classes worth another try: connection (08), transaction rollback such as a deadlock (40),
# insufficient resources (53), operator intervention such as a shutdown (57), system error (58),
# invalid authorization (28: the operator's to fix), and an object not in place yet (a table or
# column dropped behind the loader's back: its catalogue is read again).
_RETRY_CLASSES = frozenset({"08", "40", "53", "55", "57", "58", "28", "23", "XX"})
_RETRY_STATES = frozenset({"42P01", "42703", "3F000", "42P06", "42P07", "42701"})


class PostgresDestination(Destination):
    Config = PostgresConfig
    display_name = "PostgreSQL"
    config: PostgresConfig

    def __init__(self, name: str, config: PostgresConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self.dialect = config.dialect
        self._pool: SharedConnection[Any] = SharedConnection(self._open, self._close_pool)
        self._catalogues: dict[str, dict | None] = {}  # schema -> table -> column -> type
        self._misfits: Any = None
        self.misfit_count = 0

    def bind_metrics(self, metrics: Any) -> None:
        counter = getattr(metrics, "warehouse_misfits", None)
        if counter is None:
            from prometheus_client import Counter

            counter = Counter("collector_warehouse_misfit_values",
                              "Values loaded as NULL because they did not fit their column's type",
                              ["destination", "table"], registry=metrics.registry)
            metrics.warehouse_misfits = counter
        self._misfits = counter

    async def start(self) -> None:
        """Loads asyncpg; the first send connects, so that a server down at start-up holds up nothing."""
        import asyncpg  # noqa: F401 -- fails here, with the package's name, when it is not installed

    async def _open(self) -> Any:
        import asyncpg

        c = self.config
        # A load's staging tables stay in memory up to temp_buffers (8MB by default: a few
        # thousand events); it can only be set before a connection's first temporary table.
        options: dict[str, Any] = {"min_size": 1, "max_size": c.concurrency, "timeout": c.timeout,
                                   "command_timeout": c.timeout}
        if not c.redshift:
            options["server_settings"] = {"temp_buffers": "128MB"}
        if c.dsn is not None:
            return await asyncpg.create_pool(c.dsn, **options)
        return await asyncpg.create_pool(host=c.host, port=c.port, user=c.user, password=c.password,
                                         database=c.database, **options)

    @staticmethod
    async def _close_pool(pool: Any) -> None:
        await pool.close()

    def schema_of(self, source: str) -> str:
        return self.config.schema or schema_name(source, self.dialect.identifier_limit)

    async def send(self, batch: list[Envelope]) -> Outcome:
        try:
            pool = await self._pool.get()
        except Exception as error:  # noqa: BLE001 -- any failure to connect is the server's to fix
            return retry(f"cannot connect to PostgreSQL at {self.config.where()}: {describe(error)}")
        by_schema: dict[str, list[dict]] = {}
        for envelope in batch:
            by_schema.setdefault(self.schema_of(envelope.source), []).append(envelope.event)
        for schema, events in by_schema.items():
            try:
                async with pool.acquire() as conn:
                    result, catalogue = await load(conn, self.dialect, schema, events,
                                                   self._catalogues.get(schema))
            except Exception as error:  # noqa: BLE001 -- classified below
                self._catalogues.pop(schema, None)  # read it again: the failure may have changed it
                return self._outcome(error, schema)
            self._catalogues[schema] = catalogue
            self._report(schema, result)
        return DELIVERED

    def _outcome(self, error: BaseException, schema: str) -> Outcome:
        state = getattr(error, "sqlstate", None)
        reason = f"PostgreSQL schema {schema}: {describe(error)}"
        if isinstance(error, NotATable):
            return reject(reason)
        if not isinstance(state, str):
            return retry(reason)  # connection lost, timed out, refused: no answer from the server
        if state[:2] in _RETRY_CLASSES or state in _RETRY_STATES:
            return retry(f"{reason} (SQLSTATE {state})")
        return reject(f"{reason} (SQLSTATE {state})", split=True)

    def _report(self, schema: str, result: LoadResult) -> None:
        if not result.misfit_count:
            return
        self.misfit_count += result.misfit_count
        if self._misfits is not None:
            for table, count in result.misfits_by_table.items():
                self._misfits.labels(self.name, table).inc(count)
        shown = "; ".join(f"{m.table}.{m.column} ({m.column_type}) <- {m.value!r:.60}" for m in result.misfits[:5])
        log.warning("%s: %d value(s) did not fit their column's type and were loaded as NULL in schema %s: %s",
                    self.name, result.misfit_count, schema, shown)

    async def close(self) -> None:
        await self._pool.close()


__all__ = ["PostgresConfig", "PostgresDestination"]
