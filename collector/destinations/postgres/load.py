"""One load: a batch of events into a source's schema, in one transaction.

Rows are grouped by table; missing tables and columns are created (types inferred from the first
non-null value in the batch, then read back from the catalogue, which is what counts when another
loader added the column first); values are coerced into their column's type (a value that does
not fit becomes NULL and is reported as a misfit); each table's rows are copied into a temporary
staging table and merged on ``id``. Nothing is visible before the COMMIT, and a redelivered batch
adds no row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from collector.destinations.postgres.dialect import Dialect, quote
from collector.destinations.postgres.schema import (
    COERCE,
    COERCE_NAIVE_TIME,
    DATETIME,
    MISFIT,
    SYSTEM_TYPES,
    UNCHANGED,
    infer_type,
    parse_datetime,
    rows_for,
)

# The most bind arguments one statement takes (PostgreSQL's wire protocol, and asyncpg's check).
MAX_ARGUMENTS = 32767


@dataclass(slots=True)
class Misfit:
    table: str
    column: str
    column_type: str
    value: Any


@dataclass(slots=True)
class LoadResult:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows staged
    misfits: list[Misfit] = field(default_factory=list)  # the first few
    misfit_count: int = 0
    misfits_by_table: dict[str, int] = field(default_factory=dict)


def tables_of(events: list[dict], limit: int) -> dict[str, list[dict[str, Any]]]:
    """Rows by table for these events, one per messageId; ``users`` holds one row per user, its traits merged in the
    order the identifies were received (a later non-null value wins)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    users: dict[str, dict[str, Any]] = {}
    seen: set[Any] = set()
    for event in events:
        message_id = event.get("messageId")
        if message_id in seen:  # a copy within the batch: the table keeps the first
            continue
        seen.add(message_id)
        for table, row in rows_for(event, limit):
            if table == "users":
                users.setdefault(str(row["id"]), []).append(row)  # type: ignore[arg-type]
            else:
                tables.setdefault(table, []).append(row)
    if users:
        merged = []
        for rows in users.values():  # type: ignore[assignment]
            if len(rows) > 1:  # type: ignore[arg-type]
                rows.sort(key=_received)  # type: ignore[attr-defined]
            user: dict[str, Any] = {}
            for row in rows:  # type: ignore[attr-defined]
                user.update(row)
            merged.append(user)
        tables["users"] = merged
    return tables


_NEVER = datetime.min.replace(tzinfo=timezone.utc)


def _received(row: dict[str, Any]) -> datetime:
    value = row.get("received_at")
    return (parse_datetime(value) if isinstance(value, str) else None) or _NEVER


class NotATable(Exception):
    """A name the loader needs is taken by something that is not a table (a view, say): no retry helps."""


def columns_of(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Every column of these rows, in order of appearance, with the type its first value implies."""
    columns: dict[str, str] = {}
    for row in rows:
        for name, value in row.items():
            if name not in columns and value is not None:
                columns[name] = SYSTEM_TYPES.get(name) or infer_type(value)
    return columns


async def read_catalogue(conn: Any, dialect: Dialect, schema: str) -> dict[str, dict[str, str | None]]:
    """table -> column -> logical type (None: a type this loader cannot write)."""
    catalogue: dict[str, dict[str, str | None]] = {}
    for table, column, physical in await conn.fetch(dialect.columns_query(), schema):
        catalogue.setdefault(table, {})[column] = dialect.logical_type(physical)
    return catalogue


async def load(conn: Any, dialect: Dialect, schema: str, events: list[dict],
               catalogue: dict[str, dict[str, str | None]] | None) -> tuple[LoadResult, dict]:
    """Loads ``events`` into ``schema`` in one transaction on ``conn``; returns what was loaded and
    the catalogue as of this load (pass it back next time: None reads it)."""
    tables = tables_of(events, dialect.identifier_limit)
    result = LoadResult()
    uuid_ts = datetime.now(timezone.utc)
    if dialect.types["datetime"] == "timestamp":  # no time zone: UTC, naive
        uuid_ts = uuid_ts.replace(tzinfo=None)
    async with conn.transaction():
        if catalogue is None:
            await conn.execute(dialect.create_schema(schema))
            catalogue = await read_catalogue(conn, dialect, schema)
        wanted = {table: columns_of(rows) for table, rows in tables.items()}
        if await _add_missing(conn, dialect, schema, wanted, catalogue):
            catalogue = await read_catalogue(conn, dialect, schema)
        for number, (table, rows) in enumerate(tables.items()):
            known = catalogue.get(table)
            if known is None:
                raise NotATable(f"{schema}.{table} exists but is not a table")
            columns = [c for c in wanted[table] if c != "uuid_ts"]
            records = _records(table, rows, columns, known, dialect, uuid_ts, result)
            columns.append("uuid_ts")
            staging = f"staging_{number}"
            await conn.execute(dialect.create_staging(schema, table, staging))
            await _stage(conn, dialect, staging, columns, records)
            if table == "users":
                statements = dialect.merge_users(schema, staging, columns, list(known))
            else:
                statements = dialect.merge_events(schema, table, staging, columns)
            for statement in statements + dialect.drop_staging(staging):
                await conn.execute(statement)
            result.rows[table] = len(records)
    return result, catalogue


async def _add_missing(conn: Any, dialect: Dialect, schema: str, wanted: dict[str, dict[str, str]],
                       catalogue: dict[str, dict[str, str | None]]) -> bool:
    changed = False
    for table, columns in wanted.items():
        columns = {**columns, "uuid_ts": "datetime"}
        known = catalogue.get(table)
        if known is None:
            await conn.execute(dialect.create_table(schema, table, columns))
            changed = True
            continue
        for column, logical in columns.items():
            if column not in known:
                await conn.execute(dialect.add_column(schema, table, column, logical))
                changed = True
    return changed


def _records(table: str, rows: list[dict[str, Any]], columns: list[str], known: dict[str, str | None],
             dialect: Dialect, uuid_ts: datetime, result: LoadResult) -> list[tuple]:
    """The rows as tuples in ``columns`` order, plus uuid_ts, each value coerced to its column."""
    coercers = COERCE if dialect.types["datetime"] != "timestamp" else COERCE_NAIVE_TIME
    # Times repeat within a load (every event of a request has its receivedAt and sentAt): each
    # distinct one is parsed once.
    times: dict[str, Any] = {}
    to_time = _remembering(coercers[DATETIME], times)
    plan = [(c, to_time if known.get(c) == DATETIME else coercers.get(known.get(c) or "", _unwritable),
             UNCHANGED.get(known.get(c) or "", _Never)) for c in columns]
    records = []
    for row in rows:
        record = []
        get = row.get
        for column, coerce, unchanged in plan:
            value = get(column)
            if value is not None and type(value) is not unchanged:
                value = coerce(value)
                if value is MISFIT:
                    value = None
                    _misfit(result, table, column, known.get(column), get(column))
            record.append(value)
        record.append(uuid_ts)
        records.append(tuple(record))
    return records


def _remembering(coerce: Any, seen: dict[str, Any]) -> Any:
    def fitted(value: Any) -> Any:
        if type(value) is not str:
            return coerce(value)
        result = seen.get(value)
        if result is None:
            result = seen[value] = coerce(value)
        return result
    return fitted


def _misfit(result: LoadResult, table: str, column: str, kind: str | None, value: Any) -> None:
    result.misfit_count += 1
    result.misfits_by_table[table] = result.misfits_by_table.get(table, 0) + 1
    if len(result.misfits) < 20:
        result.misfits.append(Misfit(table, column, kind or "unknown", value))


def _unwritable(value: Any) -> Any:
    return MISFIT


class _Never:
    """No value is of this type: every value goes through its coercer."""


async def _stage(conn: Any, dialect: Dialect, staging: str, columns: list[str], records: list[tuple]) -> None:
    if dialect.copy_from_client:
        await conn.copy_records_to_table(staging, records=records, columns=columns)
        return
    # Multi-row INSERT, as many rows a statement as the bind-argument limit allows.
    per_statement = max(1, MAX_ARGUMENTS // len(columns))
    cols = ", ".join(quote(c) for c in columns)
    for start in range(0, len(records), per_statement):
        chunk = records[start:start + per_statement]
        values, args = [], []
        for record in chunk:
            base = len(args)
            values.append("(" + ", ".join(f"${base + i + 1}" for i in range(len(record))) + ")")
            args.extend(record)
        await conn.execute(f"INSERT INTO {quote(staging)} ({cols}) VALUES {', '.join(values)}", *args)
