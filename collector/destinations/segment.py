"""Forward events to any Segment-compatible HTTP API: Segment itself, RudderStack, another collector.

One request per batch: ``POST {endpoint}/v1/batch`` with ``{"batch": [...], "sentAt": "..."}`` and
``Authorization: Basic base64(write_key + ":")``, as Segment's server libraries do.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
from datetime import datetime, timezone
from typing import Any, ClassVar

import aiohttp
import msgspec

from collector.config.units import ByteSize
from collector.destinations.base import (
    BatchConfig,
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    classify_http,
    parse_retry_after,
    retry,
)

# Segment accepts at most 500 KB and 2,500 events per /v1/batch request. Like analytics-python, keep
# the events themselves under 475,000 bytes: the rest is room for commas and the request's envelope.
MAX_BATCH_BYTES = 475_000
MAX_BATCH_EVENTS = 2500


class SegmentConfig(DestinationConfig, tag="segment", kw_only=True):
    write_key: str
    # Base URL of the API; EU workspaces use https://events.eu1.segmentapis.com.
    endpoint: str = "https://api.segment.io"
    gzip: bool = False
    batch: BatchConfig = msgspec.field(
        default_factory=lambda: BatchConfig(max_events=MAX_BATCH_EVENTS, max_bytes=ByteSize(450 * 1024))
    )

    example: ClassVar[dict[str, Any]] = {
        "type": "segment",
        "write_key": "${SEGMENT_WRITE_KEY}",
        "endpoint": "https://api.segment.io",
        "gzip": True,
        "batch": {"max_events": 2500, "max_bytes": "450KiB", "max_wait": "1s"},
    }

    def __post_init__(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must start with http:// or https://, got {self.endpoint!r}")
        if self.batch.max_events > MAX_BATCH_EVENTS:
            raise ValueError(f"batch.max_events: a Segment batch holds at most {MAX_BATCH_EVENTS} events")
        if self.batch.max_bytes > MAX_BATCH_BYTES:
            raise ValueError(f"batch.max_bytes: a Segment batch request holds at most 500 KB; "
                             f"use {MAX_BATCH_BYTES} or less")


# Beyond classify_http's 408/429/5xx, Segment's own clients (analytics-next) retry these two.
_ALSO_RETRIED = (410, 460)

_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_body(batch: list[Envelope], sent_at: str) -> bytes:
    """The /v1/batch body, with each stored event forwarded byte for byte where possible.

    Two fields of a stored event must not travel on: its ``sentAt`` (Segment corrects the clock with
    ``timestamp = receivedAt - (sentAt - timestamp)``, so the client's old ``sentAt`` would shift
    the event by however long it waited here; the request's ``sentAt`` is right instead) and a
    ``writeKey`` (this collector's key for its source, a credential the vendor has no use for).
    Only their top-level keys are parsed; every value is copied as raw JSON.
    """
    stamp = msgspec.Raw(_encoder.encode(sent_at))
    items: list[Any] = []
    for envelope in batch:
        raw = envelope.raw
        if b'"sentAt"' in raw or b'"writeKey"' in raw:
            event = _top_level.decode(raw)
            event.pop("writeKey", None)
            if "sentAt" in event:
                event["sentAt"] = stamp
            items.append(event)
        else:
            items.append(msgspec.Raw(raw))
    return _encoder.encode({"batch": items, "sentAt": stamp})


class SegmentDestination(Destination):
    Config = SegmentConfig
    display_name = "Segment"
    config: SegmentConfig

    def __init__(self, name: str, config: SegmentConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        self._url = config.endpoint.rstrip("/") + "/v1/batch"
        token = base64.b64encode(f"{config.write_key}:".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)

    async def send(self, batch: list[Envelope]) -> Outcome:
        body = batch_body(batch, _now_iso())
        if self.config.gzip:  # level 1: most of the saving for a fraction of the CPU
            body = await asyncio.to_thread(gzip.compress, body, 1)
        async with self.http.post(
            self._url, data=body, headers=self._headers, timeout=self._timeout, allow_redirects=False
        ) as resp:
            outcome = classify_http(resp.status, resp.headers, await resp.read())
        if resp.status in _ALSO_RETRIED:
            return retry(outcome.reason, parse_retry_after(resp.headers.get("Retry-After")))
        return outcome
