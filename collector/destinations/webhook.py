"""POST (or PUT) batches of events to any URL.

Body: ``format: json`` sends a JSON array of the stored events, ``format: ndjson`` one event per
line (``Content-Type: application/x-ndjson``). Each event is forwarded exactly as stored.

Signature: with ``signing_secret`` set, every request carries ``X-Signature: sha256=<hex>`` (the
header name is ``signature_header``), where ``<hex>`` is the HMAC-SHA256 of the body, keyed with
the secret. With ``gzip: true`` the signature covers the body before compression, so a receiver
whose framework decompresses for it (aiohttp, most proxies) can still check it. To verify:

    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Signature"])

A receiver answers 2xx to accept a batch; 408, 429 and 5xx (Retry-After honoured) to have it sent
again; any other status rejects it for good (it goes to the dead-letter store).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
from typing import Any, ClassVar, Literal

import aiohttp
from multidict import CIMultiDict

from collector.destinations.base import (
    BuildContext,
    Destination,
    DestinationConfig,
    Envelope,
    Outcome,
    classify_http,
)

_CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson"}


class WebhookConfig(DestinationConfig, tag="webhook", kw_only=True):
    url: str
    method: Literal["POST", "PUT"] = "POST"
    # Sent with every request, e.g. {"Authorization": "Bearer ${HOOK_TOKEN}"}; may override Content-Type.
    headers: dict[str, str] = {}
    format: Literal["json", "ndjson"] = "json"
    gzip: bool = False
    signing_secret: str | None = None
    signature_header: str = "X-Signature"

    example: ClassVar[dict[str, Any]] = {
        "type": "webhook",
        "url": "https://hooks.example.com/collector",
        "method": "POST",
        "headers": {"Authorization": "Bearer ${HOOK_TOKEN}"},
        "format": "json",
        "signing_secret": "${HOOK_SIGNING_SECRET}",
        "signature_header": "X-Signature",
        "batch": {"max_events": 500, "max_bytes": "1MiB", "max_wait": "2s"},
    }

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")


def webhook_body(batch: list[Envelope], fmt: str) -> bytes:
    if fmt == "ndjson":
        return b"\n".join(e.raw for e in batch) + b"\n"
    return b"[" + b",".join(e.raw for e in batch) + b"]"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDestination(Destination):
    Config = WebhookConfig
    display_name = "Webhooks"
    config: WebhookConfig

    def __init__(self, name: str, config: WebhookConfig, context: BuildContext) -> None:
        super().__init__(name, config, context)
        # Case-insensitive, so that a configured "content-type" replaces ours instead of doubling it.
        self._headers = CIMultiDict({"Content-Type": _CONTENT_TYPES[config.format]})
        self._headers.update(config.headers)
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)

    async def send(self, batch: list[Envelope]) -> Outcome:
        body = webhook_body(batch, self.config.format)
        headers = self._headers
        if self.config.signing_secret is not None:
            headers = headers.copy()
            headers[self.config.signature_header] = signature(self.config.signing_secret, body)
        if self.config.gzip:  # level 1: most of the saving for a fraction of the CPU
            body = await asyncio.to_thread(gzip.compress, body, 1)
        async with self.http.request(
            self.config.method, self.config.url, data=body, headers=headers,
            timeout=self._timeout, allow_redirects=False,
        ) as resp:
            return classify_http(resp.status, resp.headers, await resp.read())
