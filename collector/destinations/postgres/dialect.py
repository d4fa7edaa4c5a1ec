"""The SQL the loader runs, for PostgreSQL and for Redshift: everything that differs between the
two is here.

What Redshift lacks, and what it gets instead:

- no ``ON CONFLICT``: a merge deletes from the staging table the rows whose ``id`` the target
  already has, then inserts one row per ``id`` (``ROW_NUMBER``); ``users`` are merged into a
  temporary table, deleted from ``users`` and inserted again (``DELETE ... USING``);
- no enforced primary key, no ``IF NOT EXISTS`` on ``ADD COLUMN``: columns are added only when the
  catalogue read back lacks them;
- no ``COPY ... FROM STDIN``: the staging table is filled by multi-row ``INSERT`` (Redshift's own
  bulk path, COPY from S3, is not implemented);
- no ``ON COMMIT DROP``: staging tables are dropped at the end of the load;
- its type names: ``double precision`` for floats, ``varchar(65535)`` for strings, ``timestamp``
  (UTC, no time zone) for times; identifiers up to 127 bytes rather than 63.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.destinations.postgres.schema import BOOLEAN, DATETIME, FLOAT, INT, JSON, STRING


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Dialect:
    name: str
    types: dict[str, str]  # logical type -> column type in DDL
    read_types: dict[str, str]  # format_type() output -> logical type
    identifier_limit: int
    on_conflict: bool
    copy_from_client: bool
    table_suffix: str = ""  # after CREATE TABLE (...): distribution and sort keys

    def logical_type(self, physical: str) -> str | None:
        if physical.startswith("character varying"):
            return STRING
        return self.read_types.get(physical)

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}"

    def create_table(self, schema: str, table: str, columns: dict[str, str]) -> str:
        key = " PRIMARY KEY" if self.on_conflict else ""
        defs = [f"{quote('id')} {self.types[STRING]} NOT NULL{key}"]
        defs += [f"{quote(c)} {self.types[t]}" for c, t in columns.items() if c != "id"]
        return f"CREATE TABLE IF NOT EXISTS {quote(schema)}.{quote(table)} ({', '.join(defs)}){self.table_suffix}"

    def add_column(self, schema: str, table: str, column: str, logical: str) -> str:
        exists = " IF NOT EXISTS" if self.on_conflict else ""
        return (f"ALTER TABLE {quote(schema)}.{quote(table)} ADD COLUMN{exists} "
                f"{quote(column)} {self.types[logical]}")

    def create_staging(self, schema: str, table: str, staging: str) -> str:
        tail = " ON COMMIT DROP" if self.on_conflict else ""
        return f"CREATE TEMP TABLE {quote(staging)} (LIKE {quote(schema)}.{quote(table)}){tail}"

    def drop_staging(self, staging: str) -> list[str]:
        return [] if self.on_conflict else [f"DROP TABLE IF EXISTS {quote(staging)}"]

    def merge_events(self, schema: str, table: str, staging: str, columns: list[str]) -> list[str]:
        """Insert the staged rows whose id the table does not have yet."""
        target, cols = f"{quote(schema)}.{quote(table)}", ", ".join(quote(c) for c in columns)
        if self.on_conflict:
            # The staged rows have distinct ids (load.tables_of keeps one row per messageId).
            return [f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {quote(staging)} "
                    f"ON CONFLICT (\"id\") DO NOTHING"]
        return [
            f"DELETE FROM {quote(staging)} USING {target} WHERE {quote(staging)}.\"id\" = {target}.\"id\"",
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER "
            f"(PARTITION BY \"id\" ORDER BY \"received_at\" DESC) AS rn FROM {quote(staging)}) AS s WHERE rn = 1",
        ]

    def merge_users(self, schema: str, staging: str, columns: list[str], table_columns: list[str]) -> list[str]:
        """Upsert ``users`` column by column: a newer row's non-null values win, an older row only
        fills what is still null. The staging table holds one row per id, its latest traits."""
        target = f"{quote(schema)}.{quote('users')}"
        newer = "s.\"received_at\" >= u.\"received_at\""
        if self.on_conflict:
            cols = ", ".join(quote(c) for c in columns)
            sets = ['"received_at" = GREATEST(u."received_at", EXCLUDED."received_at")']
            sets += [f"{quote(c)} = EXCLUDED.{quote(c)}" for c in columns if c == "uuid_ts"]
            sets += [f"{quote(c)} = CASE WHEN {newer.replace('s.', 'EXCLUDED.')} "
                     f"THEN COALESCE(EXCLUDED.{quote(c)}, u.{quote(c)}) "
                     f"ELSE COALESCE(u.{quote(c)}, EXCLUDED.{quote(c)}) END"
                     for c in columns if c not in ("id", "received_at", "uuid_ts")]
            # ORDER BY id: concurrent loads lock the same users in the same order (no deadlock).
            return [f"INSERT INTO {target} AS u ({cols}) SELECT {cols} FROM {quote(staging)} ORDER BY \"id\" "
                    f"ON CONFLICT (\"id\") DO UPDATE SET {', '.join(sets)}"]
        merged = quote(staging + "_merged")
        picks = []
        for c in table_columns:
            q = quote(c)
            if c == "id":
                picks.append(f"s.{q}")
            elif c == "received_at":
                picks.append(f"GREATEST(s.{q}, u.{q}) AS {q}" if c in columns else f"u.{q}")
            elif c == "uuid_ts" and c in columns:
                picks.append(f"s.{q}")
            elif c in columns:
                picks.append(f"CASE WHEN u.\"id\" IS NULL OR {newer} THEN COALESCE(s.{q}, u.{q}) "
                             f"ELSE COALESCE(u.{q}, s.{q}) END AS {q}")
            else:
                picks.append(f"u.{q}")
        cols = ", ".join(quote(c) for c in table_columns)
        return [
            f"CREATE TEMP TABLE {merged} AS SELECT {', '.join(picks)} FROM {quote(staging)} AS s "
            f"LEFT JOIN {target} AS u ON u.\"id\" = s.\"id\"",
            f"DELETE FROM {target} USING {quote(staging)} WHERE {target}.\"id\" = {quote(staging)}.\"id\"",
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {merged}",
            f"DROP TABLE {merged}",
        ]

    def columns_query(self) -> str:
        """(table, column, type) of every table in a schema ($1)."""
        return ("SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped")


POSTGRES = Dialect(
    name="postgres",
    types={INT: "bigint", FLOAT: "numeric", STRING: "text", DATETIME: "timestamptz", BOOLEAN: "boolean",
           JSON: "jsonb"},
    read_types={"bigint": INT, "integer": INT, "smallint": INT, "numeric": FLOAT, "double precision": FLOAT,
                "real": FLOAT, "text": STRING, "timestamp with time zone": DATETIME, "boolean": BOOLEAN,
                "jsonb": JSON, "json": JSON},
    identifier_limit=63,
    on_conflict=True,
    copy_from_client=True,
)

REDSHIFT = Dialect(
    name="redshift",
    types={INT: "bigint", FLOAT: "double precision", STRING: "varchar(65535)", DATETIME: "timestamp",
           BOOLEAN: "boolean", JSON: "super"},
    read_types={"bigint": INT, "integer": INT, "smallint": INT, "double precision": FLOAT, "real": FLOAT,
                "numeric": FLOAT, "text": STRING, "timestamp without time zone": DATETIME, "boolean": BOOLEAN},
    identifier_limit=127,
    on_conflict=False,
    copy_from_client=False,
    # RudderStack's choice: rows of one id on one slice, sorted by the time they arrived.
    table_suffix=' DISTSTYLE KEY DISTKEY("id") SORTKEY("received_at")',
)
