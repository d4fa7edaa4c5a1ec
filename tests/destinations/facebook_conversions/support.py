"""What the Facebook Conversions API tests share: settings, a Segment event through the presets
(trigger, mapping, validation, hashing) into Meta's server event, and a destination on the double."""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import Any, AsyncIterator

import aiohttp
import msgspec

from collector.config.units import decode_hook
from collector.destinations.actions.fields import PayloadError
from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.base import BuildContext, Outcome
from collector.destinations.facebook_conversions import FacebookConversions, FacebookConversionsSettings
from collector.destinations.facebook_conversions.events import server_event
from collector.metrics import Metrics
from tests.vendors.facebook import FacebookDouble

TOKEN = "EAAtest-system-user-token"
PIXEL = "1234567890123456"
AUDIENCE = "23850000000000001"
NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def settings(**overrides: Any) -> FacebookConversionsSettings:
    data = {"type": "facebook_conversions", "pixel_id": PIXEL, "access_token": TOKEN, **overrides}
    return msgspec.convert(data, FacebookConversionsSettings, strict=False, dec_hook=decode_hook)


def browser_event(event_type: str = "track", event: str | None = None, properties: dict | None = None,
                  **top: Any) -> dict[str, Any]:
    """An event as our analytics.js sends it (page URL, user agent) after ingestion (ip)."""
    body: dict[str, Any] = {
        "type": event_type, "messageId": "msg-1", "anonymousId": "anon-1", "userId": "user-1",
        "timestamp": iso(NOW - 60), "properties": properties or {},
        "context": {"ip": "203.0.113.7", "userAgent": USER_AGENT,
                    "page": {"url": "https://shop.example.com/p?x=1", "path": "/p"},
                    "library": {"name": "analytics.js", "version": "collector-1"}},
    }
    if event is not None:
        body["event"] = event
    body.update(top)
    return body


def server_sdk_event(event: str, properties: dict | None = None, **top: Any) -> dict[str, Any]:
    """A track from a server library: no page, no user agent."""
    body = {"type": "track", "event": event, "messageId": "msg-2", "userId": "user-2",
            "timestamp": iso(NOW - 60), "properties": properties or {},
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}}
    body.update(top)
    return body


def payloads(event: dict[str, Any], config: FacebookConversionsSettings | None = None
             ) -> dict[str, dict[str, Any] | str]:
    """subscription name -> the validated, hashed payload (or the PayloadError) of every
    subscription whose trigger takes the event."""
    found: dict[str, dict[str, Any] | str] = {}
    for subscription in compiled_subscriptions(config or settings()):
        if subscription.matches(event):
            try:
                found[subscription.name] = subscription.prepare(event)
            except PayloadError as error:
                found[subscription.name] = str(error)
    return found


def meta_event(event: dict[str, Any], config: FacebookConversionsSettings | None = None,
               now: float = NOW) -> tuple[str, dict[str, Any] | str]:
    """(the subscription that took it, Meta's server event or the local refusal) for an event
    exactly one event subscription takes."""
    config = config or settings()
    (name, payload), = payloads(event, config).items()
    assert isinstance(payload, dict), payload
    return name, server_event(payload, config.action_source, now)


@contextlib.asynccontextmanager
async def on_double(double: FacebookDouble, now: float = NOW, **overrides: Any
                    ) -> AsyncIterator[FacebookConversions]:
    """A destination pointed at a started double, its clock at ``now``."""
    config = settings(endpoint=double.url, **overrides)
    saved = FacebookConversions.__dict__["clock"]
    FacebookConversions.clock = staticmethod(lambda: now)
    try:
        async with aiohttp.ClientSession() as http:
            destination = FacebookConversions("meta", config, BuildContext(http, ""))
            destination.metrics = Metrics()
            destination.bind_metrics(destination.metrics)
            yield destination
    finally:
        FacebookConversions.clock = saved


def kinds(outcome: Outcome, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


def each(outcome: Outcome, size: int) -> list[Outcome]:
    return list(outcome.per_event) if outcome.kind == "mixed" else [outcome] * size
