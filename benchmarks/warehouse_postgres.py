"""Events loaded a second by the postgres destination (a diagnostic, not a scenario of
`python -m benchmarks`): N stored events, a mix of tracks of several event names, identifies and
pages, sent through the destination's send() in batches (decode, rows, COPY, merge, COMMIT), as the
delivery engine would, into a schema of its own that is dropped at the end:

    python -m benchmarks.warehouse_postgres --events 200000 --batch 10000 --concurrency 2
    python -m benchmarks.warehouse_postgres --dsn postgresql://postgres@127.0.0.1:5432/test

The first batch creates the tables; it is timed apart ("warm-up") from the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import datetime, timezone

from typing import Any

import msgspec

from collector.config.units import decode_hook
from collector.destinations.base import BuildContext, Envelope, RoutingFields
from collector.destinations.postgres import PostgresConfig, PostgresDestination

EVENT_NAMES = ["Product Viewed", "Product Added", "Order Completed", "Signed Up", "Checkout Started"]
CONTEXT = {
    "library": {"name": "analytics.js", "version": "npm:next-1.84.0"},
    "ip": "203.0.113.7", "locale": "de-DE",
    "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    "page": {"path": "/products/42", "referrer": "https://shop.example.com/", "title": "Product 42",
             "url": "https://shop.example.com/products/42?utm_source=newsletter"},
}


def stamp(i: int, ms: int) -> str:
    """A distinct time for each i (a second apart), as the collector stores times."""
    seconds = 1_732_800_000 + i
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def make_events(count: int) -> list[Envelope]:
    """Six tracks (of five names), two identifies and two pages in every ten events, of 5,000 users."""
    run = uuid.uuid4().hex[:8]
    out = []
    for i in range(count):
        user = i % 5000
        base: dict[str, Any] = {
            "messageId": f"{run}-{i}", "anonymousId": f"anon-{user}", "userId": f"user-{user}",
            # receivedAt and sentAt: one a request of 100 events; the event's own times: one each.
            "receivedAt": stamp(i // 100 * 100, 373), "sentAt": stamp(i // 100 * 100, 350),
            "timestamp": stamp(i, 123), "originalTimestamp": stamp(i, 100),
            "context": CONTEXT,
        }
        kind = i % 10
        if kind < 6:
            event = {**base, "type": "track", "event": EVENT_NAMES[i % len(EVENT_NAMES)],
                     "properties": {"product_id": f"p-{i % 977}", "price": 19.99, "quantity": 1 + i % 3,
                                    "currency": "EUR", "category": "Games"}}
        elif kind < 8:
            event = {**base, "type": "identify",
                     "traits": {"email": f"user-{user}@example.com", "plan": "pro", "logins": i % 50,
                                "address": {"city": "Köln", "country": "DE"}}}
        else:
            event = {**base, "type": "page", "name": "Product",
                     "properties": {"path": "/products/42", "title": "Product 42", "url": "https://shop.example.com/p/42"}}
        raw = msgspec.json.encode(event)
        out.append(Envelope(i + 1, "bench", 0, raw, msgspec.json.decode(raw, type=RoutingFields)))
    return out


async def run(dsn: str, events: int, batch: int, concurrency: int) -> None:
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    config = msgspec.convert({"type": "postgres", "dsn": dsn, "schema": schema, "concurrency": concurrency,
                              "timeout": 120}, PostgresConfig, strict=False, dec_hook=decode_hook)
    destination = PostgresDestination("bench", config, BuildContext(None, tempfile.gettempdir()))
    envelopes = make_events(events + batch)
    batches = [envelopes[i:i + batch] for i in range(batch, len(envelopes), batch)]
    await destination.start()
    try:
        started = time.perf_counter()
        outcome = await destination.send(envelopes[:batch])
        assert outcome.ok, outcome
        warm_up = time.perf_counter() - started

        queue = list(reversed(batches))

        async def lane() -> None:
            while queue:
                outcome = await destination.send(queue.pop())
                assert outcome.ok, outcome

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await destination.close()
        conn = await asyncpg.connect(dsn)
        loaded = await conn.fetchval(f'SELECT count(*) FROM "{schema}".tracks')
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    print(f"warm-up: {batch} events in {warm_up:.2f} s (tables created)")
    print(f"{events} events in {len(batches)} batches of {batch}, {concurrency} in flight: {elapsed:.2f} s, "
          f"{events / elapsed:,.0f} events/s loaded ({loaded} rows in tracks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(run(args.dsn, args.events, args.batch, args.concurrency))


if __name__ == "__main__":
    main()


