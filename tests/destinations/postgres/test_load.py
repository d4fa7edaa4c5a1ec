"""The postgres destination against the machine's PostgreSQL server: Segment's tables and columns,
types, new columns, misfits, users, redelivery, a load cut off, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from collector.destinations.postgres.dialect import POSTGRES, REDSHIFT
from collector.destinations.postgres.load import load
from tests.destinations.fakes import envelopes, started
from tests.support.process import free_port

from .support import DSN, columns, destination, drop_schema, tables, wrap


def track(mid: str, name: str = "Order Completed", received: str = "2024-11-28T13:26:00.373Z", **props: Any) -> dict:
    return {"type": "track", "event": name, "messageId": mid, "anonymousId": "a1", "userId": "u1",
            "receivedAt": received, "timestamp": received, "properties": props,
            "context": {"library": {"name": "analytics.js", "version": "1.0"}}}


def identify(mid: str, user: str, received: str, **traits: Any) -> dict:
    return {"type": "identify", "messageId": mid, "userId": user, "receivedAt": received, "traits": traits}


async def send(schema: str, tmp_path: Path, batch: list, **settings: Any) -> Any:
    async with started(destination(schema, tmp_path, **settings)) as d:
        return await d.send(batch), d


async def test_tables_and_columns_as_segment_users_query_them(pg: Any, schema: str, tmp_path: Path) -> None:
    outcome, _ = await send(schema, tmp_path, envelopes())
    assert outcome.ok, outcome
    assert await tables(pg, schema) == {"tracks", "order_completed", "identifies", "users", "pages"}
    tracks = await columns(pg, schema, "tracks")
    assert {c: tracks[c] for c in ("id", "received_at", "sent_at", "timestamp", "original_timestamp", "uuid_ts",
                                   "event", "event_text", "user_id", "anonymous_id", "context_ip",
                                   "context_library_name", "context_page_url")} == {
        "id": "text", "received_at": "timestamp with time zone", "sent_at": "timestamp with time zone",
        "timestamp": "timestamp with time zone", "original_timestamp": "timestamp with time zone",
        "uuid_ts": "timestamp with time zone", "event": "text", "event_text": "text", "user_id": "text",
        "anonymous_id": "text", "context_ip": "text", "context_library_name": "text", "context_page_url": "text"}
    assert "total" not in tracks  # properties only in the event's own table
    order = await columns(pg, schema, "order_completed")
    assert (order["total"], order["currency"], order["products"], order["revenue"]) == ("numeric", "text", "text", "bigint")
    assert "coupon" not in order  # null: no column
    identifies = await columns(pg, schema, "identifies")
    assert (identifies["logins"], identifies["address_city"], identifies["created_at"]) == (
        "bigint", "text", "timestamp with time zone")
    assert "anonymous_id" not in await columns(pg, schema, "users")

    # The SQL Segment's users write.
    assert [tuple(r) for r in await pg.fetch(
        f'SELECT event, event_text, count(*) FROM "{schema}".tracks GROUP BY 1, 2')] == [
        ("order_completed", "Order Completed", 1)]
    row = await pg.fetchrow(f'SELECT total, currency, received_at FROM "{schema}".order_completed')
    assert (row["total"], row["currency"]) == (Decimal("27.5"), "EUR")
    assert row["received_at"] == datetime(2024, 11, 28, 13, 26, 0, 373000, tzinfo=timezone.utc)
    joined = await pg.fetch(f'SELECT u.email, u.plan, i.context_library_name FROM "{schema}".users u '
                            f'JOIN "{schema}".identifies i ON i.user_id = u.id')
    assert [tuple(r) for r in joined] == [("zoë.müller@example.com", "pro", "analytics-python")]
    page = await pg.fetchrow(f'SELECT name, category, url, context_page_path FROM "{schema}".pages')
    assert tuple(page) == ("Checkout Complete", "Checkout",
                           "https://shop.example.com/checkout/complete?utm_source=newsletter", "/checkout/complete")


async def test_new_properties_become_columns(pg: Any, schema: str, tmp_path: Path) -> None:
    async with started(destination(schema, tmp_path)) as d:
        assert (await d.send(wrap([track("m1", total=1)]))).ok
        assert (await d.send(wrap([track("m2", total=2, coupon="SPRING", paid=True, address={"zip": "50667"})]))).ok
    cols = await columns(pg, schema, "order_completed")
    assert (cols["coupon"], cols["paid"], cols["address_zip"]) == ("text", "boolean", "text")
    rows = await pg.fetch(f'SELECT id, total, coupon, paid, address_zip FROM "{schema}".order_completed ORDER BY id')
    assert [tuple(r) for r in rows] == [("m1", 1, None, None, None),
                                        ("m2", 2, "SPRING", True, "50667")]


async def test_a_value_that_does_not_fit_is_null_and_counted(pg: Any, schema: str, tmp_path: Path) -> None:
    async with started(destination(schema, tmp_path)) as d:
        assert (await d.send(wrap([track("m1", quantity=3, paid=True, note="first", due="2024-01-01T00:00:00Z")]))).ok
        outcome = await d.send(wrap([track("m2", quantity="three", paid="yes", note=5, due="soon"),
                                     track("m3", due="2024-02-01T00:00:00Z")]))
        assert outcome.ok, outcome
        assert d.misfit_count == 3
    rows = await pg.fetch(f'SELECT id, quantity, paid, note, due FROM "{schema}".order_completed ORDER BY id')
    assert [tuple(r) for r in rows] == [
        ("m1", 3, True, "first", datetime(2024, 1, 1, tzinfo=timezone.utc)), ("m2", None, None, "5", None),
        ("m3", None, None, None, datetime(2024, 2, 1, tzinfo=timezone.utc))]


async def test_users_hold_the_latest_traits(pg: Any, schema: str, tmp_path: Path) -> None:
    async with started(destination(schema, tmp_path)) as d:
        first = [identify("i1", "u1", "2024-01-01T00:00:00Z", plan="free", email="a@example.com"),
                 identify("i2", "u1", "2024-01-02T00:00:00Z", plan="pro"),
                 identify("i3", "u2", "2024-01-01T00:00:00Z", plan="free")]
        assert (await d.send(wrap(first))).ok
        later = [identify("i4", "u1", "2024-01-03T00:00:00Z", email="b@example.com", logins=4),
                 # Older than what users holds: fills what is still null, overrides nothing.
                 identify("i5", "u2", "2023-12-01T00:00:00Z", plan="trial", logins=1)]
        assert (await d.send(wrap(later))).ok
    rows = await pg.fetch(f'SELECT id, plan, email, logins, received_at FROM "{schema}".users ORDER BY id')
    assert [tuple(r)[:4] for r in rows] == [("u1", "pro", "b@example.com", 4), ("u2", "free", None, 1)]
    assert rows[0]["received_at"] == datetime(2024, 1, 3, tzinfo=timezone.utc)
    assert rows[1]["received_at"] == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert await pg.fetchval(f'SELECT count(*) FROM "{schema}".identifies') == 5


async def test_a_redelivered_batch_adds_no_row(pg: Any, schema: str, tmp_path: Path) -> None:
    batch = wrap([track("m1"), track("m2", name="Signed Up"), track("m1"), identify("i1", "u1", "2024-01-01T00:00:00Z")])
    async with started(destination(schema, tmp_path)) as d:
        assert (await d.send(batch)).ok
        assert (await d.send(batch)).ok
        assert (await d.send(batch[1:2] + wrap([track("m3")]))).ok
    counts = {t: await pg.fetchval(f'SELECT count(*) FROM "{schema}"."{t}"')
              for t in ("tracks", "order_completed", "signed_up", "identifies", "users")}
    assert counts == {"tracks": 3, "order_completed": 2, "signed_up": 1, "identifies": 1, "users": 1}


async def test_a_connection_killed_mid_load_leaves_no_half_load(pg: Any, schema: str, tmp_path: Path) -> None:
    async with started(destination(schema, tmp_path)) as d:
        assert (await d.send(wrap([track("m0"), identify("i0", "u0", "2024-01-01T00:00:00Z")]))).ok
        # Hold the event table so that the load stops after it has written identifies and tracks.
        blocker = await asyncpg.connect(DSN)
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute(f'LOCK TABLE "{schema}".order_completed IN ACCESS EXCLUSIVE MODE')
        batch = wrap([identify("i1", "u1", "2024-01-02T00:00:00Z", plan="pro"), track("m1"), track("m2")])
        sending = asyncio.create_task(d.send(batch))
        for _ in range(100):
            pid = await pg.fetchval("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                    "AND query LIKE '%order_completed%' AND pid <> $1", blocker.get_server_pid())
            if pid:
                break
            await asyncio.sleep(0.05)
        assert pid, "the load never waited on the locked table"
        assert await pg.fetchval("SELECT pg_terminate_backend($1)", pid)
        outcome = await sending
        await blocking.rollback()
        await blocker.close()
        assert outcome.kind == "retry", outcome
        counts = {t: await pg.fetchval(f'SELECT count(*) FROM "{schema}"."{t}"')
                  for t in ("tracks", "order_completed", "identifies", "users")}
        assert counts == {"tracks": 1, "order_completed": 1, "identifies": 1, "users": 1}
        assert (await d.send(batch)).ok  # the retry, on a new connection
    counts = {t: await pg.fetchval(f'SELECT count(*) FROM "{schema}"."{t}"')
              for t in ("tracks", "order_completed", "identifies", "users")}
    assert counts == {"tracks": 3, "order_completed": 3, "identifies": 2, "users": 2}


async def test_no_server_is_retried(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    async with started(destination("unused", tmp_path, dsn=dsn, timeout=3)) as d:
        outcome = await d.send(wrap([track("m1")]))
    assert outcome.kind == "retry" and "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1" in outcome.reason


async def test_a_schema_change_refused_for_good_rejects_with_the_reason(pg: Any, schema: str, tmp_path: Path) -> None:
    wide = track("m1", **{f"p{i}": i for i in range(1700)})  # over PostgreSQL's 1,600 columns a table
    outcome, _ = await send(schema, tmp_path, wrap([wide]))
    assert outcome.kind == "reject" and outcome.split, outcome
    assert "1600" in outcome.reason and "SQLSTATE 54011" in outcome.reason
    assert await tables(pg, schema) == set()


async def test_a_view_in_the_way_of_a_table_rejects(pg: Any, schema: str, tmp_path: Path) -> None:
    await pg.execute(f'CREATE SCHEMA "{schema}"')
    await pg.execute(f'CREATE VIEW "{schema}".signed_up AS SELECT 1 AS id')
    outcome, _ = await send(schema, tmp_path, wrap([track("m1", name="Signed Up")]))
    assert outcome.kind == "reject" and f"{schema}.signed_up exists but is not a table" in outcome.reason, outcome
    assert await tables(pg, schema) == {"signed_up"}  # the view; the tables created in the load rolled back


async def test_users_merge_in_received_order_whatever_the_time_format(pg: Any, schema: str, tmp_path: Path) -> None:
    batch = [identify("i1", "u1", "2024-01-01T00:00:00.500Z", plan="later"),
             identify("i2", "u1", "2024-01-01T00:00:00Z", plan="earlier")]
    outcome, _ = await send(schema, tmp_path, wrap(batch))
    assert outcome.ok, outcome
    assert await pg.fetchval(f'SELECT plan FROM "{schema}".users') == "later"


async def test_default_schema_is_the_source_name_snake_cased(pg: Any, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:10]
    source = f"Web App {token}"
    try:
        async with started(destination(None, tmp_path)) as d:  # type: ignore[arg-type]
            assert (await d.send(wrap([track("m1")], source=source))).ok
        assert await pg.fetchval(f'SELECT count(*) FROM "web_app_{token}".tracks') == 1
    finally:
        await drop_schema(pg, f"web_app_{token}")


async def test_redshift_merges_run_on_postgres(pg: Any, schema: str) -> None:
    """Redshift's merge (DELETE ... USING, ROW_NUMBER, users through a merged table) and its staging
    by multi-row INSERT, run here with PostgreSQL's type names."""
    dialect = dataclasses.replace(REDSHIFT, types=POSTGRES.types, read_types=POSTGRES.read_types,
                                  table_suffix="", identifier_limit=63)
    first = [track("m1", total=1), track("m1", total=1), identify("i1", "u1", "2024-01-01T00:00:00Z", plan="free", a=1)]
    result, catalogue = await load(pg, dialect, schema, first, None)
    assert result.rows == {"tracks": 1, "order_completed": 1, "identifies": 1, "users": 1}  # one row per messageId
    second = [track("m1", total=1), track("m2", total=2), identify("i2", "u1", "2024-01-02T00:00:00Z", plan="pro")]
    await load(pg, dialect, schema, second, catalogue)
    assert await pg.fetchval(f'SELECT count(*) FROM "{schema}".order_completed') == 2
    assert await pg.fetchval(f'SELECT count(*) FROM "{schema}".tracks') == 2
    assert tuple(await pg.fetchrow(f'SELECT id, plan, a FROM "{schema}".users')) == ("u1", "pro", 1)
    assert await pg.fetchval("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'staging%'") == 0
