from __future__ import annotations

from typing import Any, AsyncIterator

import asyncpg
import pytest

from .support import DSN, drop_schema, unique_schema


@pytest.fixture
async def pg() -> AsyncIterator[Any]:
    conn = await asyncpg.connect(DSN)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def schema(pg: Any) -> AsyncIterator[str]:
    name = unique_schema()
    try:
        yield name
    finally:
        await drop_schema(pg, name)
