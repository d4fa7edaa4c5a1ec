"""The tracking API: every route real Segment clients call, answered the way they expect."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Awaitable, Callable

import msgspec
from aiohttp import web

from collector.config.model import Config
from collector.filters.source import EventBlocked, SourceFilters
from collector.ingest.auth import header_source, resolve_source
from collector.ingest.body import decode_json, read_body
from collector.ingest.client_ip import ClientAddress
from collector.ingest.errors import EventError, IngestError
from collector.ingest.normalize import CALL_TYPES, epoch_us, normalize, parse_time, request_facts
from collector.log.errors import StorageUnavailable
from collector.log.event_log import EventLog
from collector.metrics import Metrics

log = logging.getLogger(__name__)

SHORT_FORMS = {name[0]: name for name in CALL_TYPES}  # /v1/t -> track, the browser's short routes
BATCH_ROUTES = ("batch", "b", "import")
ALLOWED_HEADERS = "Content-Type, Authorization, X-Retry-Count, Content-Encoding"
_OK = b'{"success":true}'
# At most this many rejected events are described back to the client; the rest are counted.
_REPORTED_REJECTIONS = 10

# Called after a successful collection request with the request's anonymousId, e.g. to refresh a
# first-party identity cookie.
ResponseHook = Callable[[web.Request, web.Response, "str | None"], None]


class TrackingAPI:
    def __init__(
        self, config: Config, event_log: EventLog, metrics: Metrics, filters: dict[str, SourceFilters] | None = None
    ) -> None:
        self.config = config
        self.log = event_log
        self.metrics = metrics
        self.limits = config.server.limits
        self.sources_by_key = {s.write_key: (name, s) for name, s in config.sources.items()}
        # Source name -> its tracking plan and PII rules; sources without any are absent. Built at
        # start-up (collector/app.py); replacing the dict swaps them for the next request.
        self.filters: dict[str, SourceFilters] = filters or {}
        self.client_address = ClientAddress(config.server.trusted_proxies)
        origins = config.server.cors.allowed_origins
        self._any_origin = "*" in origins
        self._origins = frozenset(origins) - {"*"}
        self._credentials = config.browser.cookie.enabled
        self.response_hooks: list[ResponseHook] = []
        self._received_counters: dict[str, Any] = {}

    def add_routes(self, app: web.Application) -> None:
        for name in CALL_TYPES:
            self._route(app, f"/v1/{name}", self._single(name))
            self._route(app, f"/v1/{name[0]}", self._single(name))
        for name in BATCH_ROUTES:
            self._route(app, f"/v1/{name}", self._batch)
        self._route(app, "/v1/m", self._telemetry)

    def _route(self, app: web.Application, path: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
        route = path.rsplit("/", 1)[1]

        latency = self.metrics.request_seconds.labels(route)
        answered: dict[int, Any] = {}  # status -> counter child, so the hot path skips labels()

        async def answer(request: web.Request) -> web.Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except IngestError as error:
                response = web.Response(status=error.status, body=error.body(), content_type="application/json")
                if error.retry_after is not None:
                    response.headers["Retry-After"] = str(error.retry_after)
                if error.status >= 500:
                    log.warning("%s %s: %s", request.method, path, error.message)
            self._cors(request, response)
            counter = answered.get(response.status)
            if counter is None:
                counter = answered[response.status] = self.metrics.requests.labels(route, str(response.status))
            counter.inc()
            latency.observe(time.perf_counter() - started)
            return response

        app.router.add_post(path, answer)
        app.router.add_route("OPTIONS", path, self._preflight)

    # -- CORS --------------------------------------------------------------------------------------

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        """An origin listed in cors.allowed_origins is echoed, with credentials only when the
        server-set cookie is on (our analytics.js then sends its requests with credentials). Any
        other origin gets "*" when the list holds "*", and never credentials: a page of any site
        may send events, but no site may have the browser attach cookies to them."""
        origin = request.headers.get("Origin")
        if not origin:
            return
        headers = response.headers
        if origin in self._origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
            if self._credentials:
                headers["Access-Control-Allow-Credentials"] = "true"
        elif self._any_origin:
            headers["Access-Control-Allow-Origin"] = "*"
        else:
            return
        # Let browser libraries read Retry-After on a 429/503 and back off as told.
        headers["Access-Control-Expose-Headers"] = "Retry-After"

    async def _preflight(self, request: web.Request) -> web.Response:
        response = web.Response(status=204)
        self._cors(request, response)
        response.headers["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            request.headers.get("Access-Control-Request-Headers") or ALLOWED_HEADERS
        )
        response.headers["Access-Control-Max-Age"] = "86400"
        return response

    # -- collection ----------------------------------------------------------------------------------

    def _single(self, call_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            source, payload = await self._authenticated_payload(request)
            facts = request_facts(self._ip(request))
            try:
                stored = [normalize(payload, call_type, facts, self.limits.max_event_bytes, self.filters.get(source))]
            except EventError as error:
                self.metrics.events_rejected.labels(source, error.code).inc()
                raise IngestError(400, error.code, error.message) from None
            except EventBlocked:
                stored = []  # answered 200 as Segment does, so that the client does not retry it
            return await self._commit(request, source, stored, facts.received_ms, [], payload.get("anonymousId"))

        return handle

    async def _batch(self, request: web.Request) -> web.Response:
        source, payload = await self._authenticated_payload(request)
        items = payload.get("batch")
        if not isinstance(items, list):
            raise IngestError(400, "invalid_batch", "batch must be an array of events")
        if len(items) > self.limits.max_batch_events:
            raise IngestError(
                400, "batch_too_large", f"a batch holds at most {self.limits.max_batch_events} events, got {len(items)}"
            )
        if not items:
            return web.Response(body=_OK, content_type="application/json")
        facts = request_facts(self._ip(request))
        for key in ("context", "integrations"):
            value = payload.get(key)
            if value is not None and not isinstance(value, dict):
                raise IngestError(400, "invalid_field", f"the batch's {key} must be an object")
        facts.batch_context = payload.get("context")
        facts.batch_integrations = payload.get("integrations")
        sent_at = payload.get("sentAt")
        if sent_at is not None:
            try:
                facts.batch_sent_at_us = epoch_us(parse_time(sent_at, "sentAt"))
            except EventError as error:
                raise IngestError(400, error.code, error.message) from None
            facts.batch_sent_at = sent_at
        stored: list[tuple[str, bytes]] = []
        rejected: list[dict] = []
        reasons: Counter[str] = Counter()
        max_bytes = self.limits.max_event_bytes
        filters = self.filters.get(source)
        blocked = 0
        for index, item in enumerate(items):
            try:
                stored.append(normalize(item, None, facts, max_bytes, filters))
            except EventError as error:
                reasons[error.code] += 1
                if len(rejected) < _REPORTED_REJECTIONS:
                    rejected.append({"index": index, "code": error.code, "message": error.message})
            except EventBlocked:
                blocked += 1  # counted and logged by the filters; the others go on
        for code, count in reasons.items():
            self.metrics.events_rejected.labels(source, code).inc(count)
        if rejected:
            log.info(
                "source %s: %d of %d events rejected (%s)", source, reasons.total(), len(items),
                ", ".join(f"{code}: {n}" for code, n in reasons.items()), extra={"source": source},
            )
        if not stored and not blocked:
            first = rejected[0]
            raise IngestError(400, first["code"], f"no valid event in the batch; event {first['index']}: {first['message']}")
        return await self._commit(request, source, stored, facts.received_ms, rejected, _last_anonymous_id(items))

    async def _telemetry(self, request: web.Request) -> web.Response:
        # The browser library's own metrics; accepted so that it never retries, not stored.
        await read_body(request, self.limits.max_request_bytes, self.config.server.request_timeout)
        return web.Response(body=_OK, content_type="application/json")

    # -- shared steps ----------------------------------------------------------------------------------

    async def _authenticated_payload(self, request: web.Request) -> tuple[str, dict]:
        """The request's source and body. A write key in the Authorization header is checked
        before the body is read; one in the body, after."""
        authorization = request.headers.get("Authorization")
        source = header_source(authorization, self.sources_by_key)
        payload = await self._payload(request)
        if source is None:
            source = resolve_source(authorization, payload.get("writeKey"), self.sources_by_key)
        return source, payload

    async def _payload(self, request: web.Request) -> dict:
        if not self.log.capacity.accepting:
            raise _unavailable(self.log.capacity.reason)
        body = await read_body(request, self.limits.max_request_bytes, self.config.server.request_timeout)
        payload = decode_json(body)
        if not isinstance(payload, dict):
            raise IngestError(400, "invalid_body", "the body must be a JSON object")
        return payload

    def _ip(self, request: web.Request) -> str | None:
        # A proxy may add its own X-Forwarded-For line instead of appending to the client's (HAProxy
        # does): read them all, in order, or the first, client-written line would be believed.
        forwarded = request.headers.getall("X-Forwarded-For", None)
        return self.client_address.resolve(request.remote, ", ".join(forwarded) if forwarded else None)

    def _received(self, source: str) -> Any:
        counter = self._received_counters.get(source)
        if counter is None:
            counter = self._received_counters[source] = self.metrics.events_received.labels(source)
        return counter

    async def _commit(
        self, request: web.Request, source: str, stored: list[tuple[str, bytes]], received_ms: int,
        rejected: list[dict], anonymous_id: object,
    ) -> web.Response:
        if stored:  # none when the tracking plan blocked every event
            self._received(source).inc(len(stored))
            try:
                await self.log.append(source, [(source, message_id, received_ms, body) for message_id, body in stored])
            except StorageUnavailable as error:
                raise _unavailable(error.reason) from None
        if rejected:
            response = web.Response(
                body=msgspec.json.encode({"success": True, "rejected": rejected}), content_type="application/json"
            )
        else:
            response = web.Response(body=_OK, content_type="application/json")
        for hook in self.response_hooks:
            hook(request, response, anonymous_id if isinstance(anonymous_id, str) else None)
        return response


def _last_anonymous_id(items: list) -> object:
    for item in reversed(items):
        if isinstance(item, dict) and item.get("anonymousId"):
            return item["anonymousId"]
    return None


def _unavailable(reason: str) -> IngestError:
    return IngestError(503, "storage_unavailable", f"events cannot be stored right now: {reason}", retry_after=5)
