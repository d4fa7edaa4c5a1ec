"""A ceiling for the collector: aiohttp + uvloop doing the collector's own per-event work (decode,
Segment's validation, enrichment, the clock fix, encoding each event for storage), storing nothing.

What the collector reaches over this is what storage costs; what this reaches over the no-op
handler is what Python spends on each event before the disk. On a 2-vCPU machine, the collector's
event loop and its log writer each want a core, so this server (one core, nothing beside it) is an
upper bound that the collector cannot reach.

    python -m benchmarks.baselines.validate_server --port 9000
"""

from __future__ import annotations

from aiohttp import web

from benchmarks.baselines.noop_server import OK, main
from collector.ingest.body import decode_json
from collector.ingest.normalize import epoch_us, normalize, parse_time, request_facts

MAX_EVENT_BYTES = 32 * 1024


async def handle(request: web.Request) -> web.Response:
    payload = decode_json(await request.read())
    facts = request_facts(request.remote)
    items = payload.get("batch")
    if isinstance(items, list):
        facts.batch_context = payload.get("context")
        facts.batch_integrations = payload.get("integrations")
        if sent_at := payload.get("sentAt"):
            facts.batch_sent_at, facts.batch_sent_at_us = sent_at, epoch_us(parse_time(sent_at, "sentAt"))
        stored = [normalize(item, None, facts, MAX_EVENT_BYTES) for item in items]
    else:
        call_type = request.path.rsplit("/", 1)[1]
        stored = [normalize(payload, call_type, facts, MAX_EVENT_BYTES)]
    assert stored
    return web.Response(body=OK, content_type="application/json")


if __name__ == "__main__":
    main(handle, __doc__)
