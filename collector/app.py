"""Wires the stages together in the order an event travels, and owns start-up and shutdown.

    HTTP ──► ingest (decode, auth, validate, enrich) ──► source filters (tracking plan, PII)
         ──► durable log (group commit)
         ──► one dispatcher per destination (route, batch, send, retry, dead-letter) ──► vendor
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

from collector import observability
from collector.browser.cookies import refresh_anonymous_id_cookie
from collector.browser.routes import add_browser_routes
from collector.config.advice import advice
from collector.config.model import Config
from collector.delivery.dispatcher import Dispatcher
from collector.destinations.base import BuildContext
from collector.destinations.registry import destination_class
from collector.filters.source import build_source_filters
from collector.ingest.connections import GuardedAppRunner
from collector.ingest.handlers import TrackingAPI
from collector.log.event_log import EventLog
from collector.log.maintenance import Maintenance
from collector.log.writer import CommitStats
from collector.metrics import Metrics

log = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Collector:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.log = EventLog(config.storage, on_commit=self._committed)
        self.dispatchers: list[Dispatcher] = []
        self.ready = False
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._maintenance: Maintenance | None = None
        self._gauges: asyncio.Task | None = None
        self.port: int | None = None

    # -- start ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        await self.log.open()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, limit_per_host=64, ttl_dns_cache=300),
            headers={"User-Agent": "collector (+https://github.com/)"},
        )
        context = BuildContext(http=self._http, data_dir=config.storage.path)
        for name, dest_config in config.destinations.items():
            if not dest_config.enabled:
                log.info("destination %s is disabled", name)
                continue
            cls = destination_class(dest_config.__struct_config__.tag)
            self.dispatchers.append(Dispatcher(cls(name, dest_config, context), self.log, self.metrics))
        cursors = await self.log.load_cursors()
        for dispatcher in self.dispatchers:
            await dispatcher.start(cursors)
        self._maintenance = Maintenance(
            self.log, self._delivered_upto, dead_letter_retention=config.storage.dead_letter_retention
        )
        self._maintenance.start()
        self._gauges = asyncio.create_task(observability.refresh_gauges(self), name="gauges")

        app = self.build_web_app()
        # A request's head must arrive within request_timeout too (aiohttp alone waits an hour).
        self._runner = GuardedAppRunner(
            app, handle_signals=False, access_log=None, auto_decompress=False,
            shutdown_timeout=config.server.shutdown_timeout, head_timeout=config.server.request_timeout,
        )
        await self._runner.setup()
        host, port = parse_listen(config.server.listen)
        site = web.TCPSite(self._runner, host, port, backlog=1024, shutdown_timeout=config.server.shutdown_timeout)
        await site.start()
        self.port = self._runner.addresses[0][1] if self._runner.addresses else port
        self.ready = True
        log.info(
            "collector listening on %s:%d", host, self.port,
            extra={"sources": sorted(config.sources), "destinations": [d.name for d in self.dispatchers]},
        )
        for note in advice(config):
            log.warning("config: %s", note)

    def build_web_app(self) -> web.Application:
        limits = self.config.server.limits
        app = web.Application(client_max_size=limits.max_request_bytes + 1)
        # The source filters (tracking plans, PII) are built here, from the config, so that a
        # reload can build new ones and swap api.filters.
        api = TrackingAPI(self.config, self.log, self.metrics, build_source_filters(self.config, self.metrics))
        api.add_routes(app)
        observability.add_routes(app, self)
        self._add_browser_routes(app, api)
        return app

    def _add_browser_routes(self, app: web.Application, api: TrackingAPI) -> None:
        browser = self.config.browser
        add_browser_routes(app, self.config)  # nothing when browser.enabled is false
        if browser.enabled and browser.cookie.enabled:
            api.response_hooks.append(
                lambda request, response, anonymous_id: refresh_anonymous_id_cookie(
                    request, response, anonymous_id, browser
                )
            )

    # -- while running --------------------------------------------------------------------------------

    def _committed(self, stats: CommitStats) -> None:
        metrics = self.metrics
        metrics.commit_seconds.observe(stats.seconds)
        if stats.dedup_ids >= 0:
            metrics.dedup_ids.set(stats.dedup_ids)
        if stats.dedup_window_ms >= 0:
            metrics.dedup_window_seconds.set(stats.dedup_window_ms / 1000)
        for source, count in stats.committed.items():
            metrics.events_committed.labels(source).inc(count)
        for source, count in stats.duplicates.items():
            if count:
                metrics.events_deduplicated.labels(source).inc(count)

    def _delivered_upto(self) -> int | None:
        """The highest seq every destination has durably passed (all of the log if none)."""
        if not self.dispatchers:
            return self.log.last_seq
        return min(d.durable_cursor for d in self.dispatchers)

    # -- stop ---------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests and their commits, then delivery, then the log."""
        self.ready = False
        timeout = self.config.server.shutdown_timeout
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.gather(*(d.stop(timeout) for d in self.dispatchers))
        if self._gauges is not None:
            self._gauges.cancel()
        if self._maintenance is not None:
            await self._maintenance.stop()
        await self.log.close()
        if self._http is not None:
            await self._http.close()
        log.info("collector stopped")
