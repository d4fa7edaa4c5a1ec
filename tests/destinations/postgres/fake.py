"""The postgres destination's contract fake: the machine's PostgreSQL server, a schema of the
test's own (dropped after), read back with SQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import json
from typing import Any

import asyncpg

from collector.destinations.base import Envelope
from tests.destinations.fakes import ErrorCase, Fake
from tests.support.process import free_port

from .support import DSN, drop_schema, unique_schema

READ_ONLY_ROLE = "collector_contract_reader"


def _run(coro: Any) -> Any:
    """Runs ``coro`` on an event loop of its own (the fake's methods are synchronous)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _query(sql: str, *args: Any, dsn: str = DSN) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def _server_down(fake: ContractFake) -> None:
    fake.dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/test"


def _no_privilege(fake: ContractFake) -> None:
    # A role that may connect but not create a schema: the server refuses the schema for good.
    _run(_query(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READ_ONLY_ROLE}') "
                f"THEN CREATE ROLE {READ_ONLY_ROLE} LOGIN; END IF; END $$"))
    _run(_query(f"REVOKE CREATE ON DATABASE test FROM {READ_ONLY_ROLE}"))
    fake.dsn = f"postgresql://{READ_ONLY_ROLE}@127.0.0.1:5432/test"


class ContractFake(Fake):
    def __init__(self, tmp_path: Any) -> None:
        super().__init__(tmp_path)
        self.schema = unique_schema("contract")
        self.dsn = DSN

    async def __aexit__(self, *exc: object) -> None:
        conn = await asyncpg.connect(DSN)
        try:
            await drop_schema(conn, self.schema)
        finally:
            await conn.close()

    def point(self, example: dict[str, Any]) -> dict[str, Any]:
        return {**copy.deepcopy(example), "dsn": self.dsn, "schema": self.schema, "timeout": 5}

    def assert_delivered(self, batch: list[Envelope]) -> None:
        s = self.schema
        rows = _run(_query(
            f'SELECT \'tracks\' AS t, id FROM "{s}".tracks UNION ALL SELECT \'identifies\', id FROM "{s}".identifies '
            f'UNION ALL SELECT \'pages\', id FROM "{s}".pages UNION ALL SELECT \'order_completed\', id '
            f'FROM "{s}".order_completed UNION ALL SELECT \'users\', id FROM "{s}".users'))
        got = sorted((r["t"], r["id"]) for r in rows)
        want = []
        for envelope in batch:
            event = json.loads(envelope.raw)
            table = {"track": "tracks", "identify": "identifies", "page": "pages"}[event["type"]]
            want.append((table, event["messageId"]))
            if event["type"] == "track":
                want.append(("order_completed", event["messageId"]))
            if event["type"] == "identify" and event.get("userId"):
                want.append(("users", event["userId"]))
        assert got == sorted(want)

    error_cases = [
        ErrorCase("server down", _server_down, "retry", None, "cannot connect to PostgreSQL at postgresql://postgres@"),
        ErrorCase("no privilege to create the schema", _no_privilege, "reject", None, "permission denied"),
    ]
