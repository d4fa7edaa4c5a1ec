"""Reading a lake directory back: its tables, and a table's rows through DuckDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_table(root: Path | str, table: str) -> list[dict[str, Any]]:
    """Every row of one table in a lake directory, with its partition columns, via DuckDB."""
    import duckdb

    pattern = f"{root}/{table}/**/*.parquet"
    connection = duckdb.connect()
    try:
        result = connection.sql(f"select * from read_parquet('{pattern}', hive_partitioning=true, union_by_name=true)")
        names = result.columns
        return [dict(zip(names, values)) for values in result.fetchall()]
    finally:
        connection.close()


def tables_in(root: Path | str) -> list[str]:
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("_"))
