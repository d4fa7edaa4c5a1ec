"""The machine's PostgreSQL server for these tests: a uniquely named schema per test, dropped after."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec

from collector.destinations.base import Envelope, RoutingFields

DSN = "postgresql://postgres@127.0.0.1:5432/test"


def unique_schema(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def drop_schema(conn: Any, schema: str) -> None:
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def destination(schema: str, tmp_path: Path, **settings: Any) -> Any:
    from tests.destinations.fakes import build  # fakes.py imports this package's fake, which imports this

    return build({"type": "postgres", "dsn": DSN, "schema": schema, **settings}, None, tmp_path / "data")


def wrap(events: list[dict[str, Any]], source: str = "web") -> list[Envelope]:
    """Events as the delivery engine hands them over (no receivedAt needed)."""
    out = []
    for seq, event in enumerate(events, start=1):
        raw = msgspec.json.encode(event)
        out.append(Envelope(seq, source, 0, raw, msgspec.json.decode(raw, type=RoutingFields)))
    return out


async def columns(conn: Any, schema: str, table: str) -> dict[str, str]:
    rows = await conn.fetch("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = $1 AND table_name = $2", schema, table)
    return {r["column_name"]: r["data_type"] for r in rows}


async def tables(conn: Any, schema: str) -> set[str]:
    rows = await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
    return {r["table_name"] for r in rows}
