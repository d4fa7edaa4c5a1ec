"""Health, readiness and metrics endpoints, plus the gauges refreshed in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collector.app import Collector

log = logging.getLogger(__name__)


def add_routes(app: web.Application, collector: Collector) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        capacity = collector.log.capacity
        if not collector.ready or not capacity.accepting:
            reason = capacity.reason if collector.ready else "starting or stopping"
            return web.json_response({"status": "unavailable", "reason": reason}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=collector.metrics.render(), content_type="text/plain", charset="utf-8")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def refresh_gauges(collector: Collector, every: float = 2.0) -> None:
    """Queue depth and lag per destination, storage size: measured here, not on the hot path."""
    metrics = collector.metrics
    while True:
        try:
            capacity = collector.log.capacity
            metrics.storage_bytes.set(capacity.used_bytes)
            metrics.storage_free_bytes.set(capacity.free_bytes)
            metrics.storage_accepting.set(1 if capacity.accepting else 0)
            newest = await collector.log.newest_seq()
            now_ms = time.time() * 1000
            for dispatcher in collector.dispatchers:
                metrics.queue_depth.labels(dispatcher.name).set(max(0, newest - dispatcher.cursor))
                oldest = await collector.log.oldest_received_after(dispatcher.cursor)
                metrics.lag_seconds.labels(dispatcher.name).set(0 if oldest is None else (now_ms - oldest) / 1000)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("refreshing gauges failed")
        await asyncio.sleep(every)
