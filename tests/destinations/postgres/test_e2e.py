"""The postgres destination end to end: Segment's Python library -> the collector process ->
PostgreSQL, read back with the SQL a warehouse user writes."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.destinations.stream_e2e import collector_config, make_events, send_with_sdk, wait_delivered

from .support import DSN, drop_schema, unique_schema


async def _fetch(schema: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(DSN)
    try:
        return await conn.fetch(sql.replace("{s}", f'"{schema}"'))
    finally:
        await conn.close()


def fetch(schema: str, sql: str) -> list[tuple]:
    return [tuple(r) for r in asyncio.run(_fetch(schema, sql))]


def test_sdk_events_land_in_segments_tables(collector_factory) -> None:
    events = make_events(users=6, per_user=12)
    schema = unique_schema("e2e")
    try:
        config = collector_config({"type": "postgres", "dsn": DSN, "schema": schema, "max_lag": 1}, max_events=25)
        collector = collector_factory(config)
        send_with_sdk(collector, events)
        wait_delivered(collector, len(events))

        tracks = [e for e in events if e["type"] == "track"]
        identifies = [e for e in events if e["type"] == "identify"]
        pages = [e for e in events if e["type"] == "page"]
        assert fetch(schema, "SELECT event, event_text, count(*) FROM {s}.tracks GROUP BY 1, 2") == [
            ("step_done", "Step Done", len(tracks))]
        rows = fetch(schema, "SELECT id, step, ok, anonymous_id, context_library_name FROM {s}.step_done")
        assert sorted(rows) == sorted((e["messageId"], e["properties"]["step"], True, e["anonymousId"],
                                       "analytics-python") for e in tracks)
        assert sorted(fetch(schema, "SELECT id, user_id, step FROM {s}.identifies")) == sorted(
            (e["messageId"], e["userId"], e["traits"]["step"]) for e in identifies)
        latest = {e["userId"]: e["traits"]["step"] for e in identifies}  # each user's last identify
        assert dict(fetch(schema, "SELECT id, step FROM {s}.users")) == latest
        assert sorted(fetch(schema, "SELECT id, name, step FROM {s}.pages")) == sorted(
            (e["messageId"], "Pricing", e["properties"]["step"]) for e in pages)
        # Times as the collector stored them: received_at set, never before the event's timestamp.
        assert fetch(schema, "SELECT count(*) FROM {s}.tracks WHERE received_at IS NULL OR uuid_ts < received_at") == [(0,)]
        assert collector.metric("collector_dead_lettered_events_total", destination="stream") == 0
    finally:
        async def drop() -> None:
            conn = await asyncpg.connect(DSN)
            await drop_schema(conn, schema)
            await conn.close()

        asyncio.run(drop())
