"""Shared pieces of the GA4 tests: settings aimed at the double, a destination built on them, and
what one event becomes (subscription, then GA4 event) without sending it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import aiohttp
import msgspec

from collector.config.units import decode_hook
from collector.destinations.actions.subscriptions import compiled_subscriptions
from collector.destinations.base import BuildContext
from collector.destinations.google_analytics_4 import GoogleAnalytics4, GoogleAnalytics4Settings
from collector.destinations.google_analytics_4.api import ga4_event, request_fields
from collector.metrics import Metrics

SECRET = "ga4-secret"
MEASUREMENT_ID = "G-TEST0001"
# The tests' clock: events are stamped a minute before it.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc).timestamp()
STAMP = "2026-03-02T11:59:00.000Z"
STAMP_MICROS = int((NOW - 60) * 1_000_000)


def settings(origin: str = "http://127.0.0.1:9", **overrides: Any) -> GoogleAnalytics4Settings:
    data = {"type": "google_analytics_4", "measurement_id": MEASUREMENT_ID, "api_secret": SECRET,
            "endpoint": origin, **overrides}
    return msgspec.convert(data, GoogleAnalytics4Settings, strict=False, dec_hook=decode_hook)


class FixedClock(GoogleAnalytics4):
    """GA4 with the tests' clock."""

    clock = staticmethod(lambda: NOW)


def build(origin: str, http: aiohttp.ClientSession, **overrides: Any) -> FixedClock:
    destination = FixedClock("ga4", settings(origin, **overrides), BuildContext(http, ""))
    destination.bind_metrics(Metrics())
    return destination


def track(event: str, properties: dict | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": properties or {}, "anonymousId": "anon-1",
            "userId": "user-1", "messageId": f"m-{event}", "timestamp": STAMP, **fields}


def mapped(event: dict[str, Any], **overrides: Any) -> list[tuple[str, dict[str, Any]]]:
    """(subscription name, payload) for every subscription taking the event."""
    subscriptions = compiled_subscriptions(settings(**overrides))
    return [(s.name, s.prepare(event)) for s in subscriptions if s.matches(event)]


def sent(event: dict[str, Any], **overrides: Any) -> tuple[str, dict[str, Any] | str, dict[str, Any] | str]:
    """(subscription name, GA4 event or reason, request fields or reason) of the one subscription
    taking the event."""
    config = settings(**overrides)
    taken = [s for s in compiled_subscriptions(config) if s.matches(event)]
    assert len(taken) == 1, [s.name for s in taken]
    subscription = taken[0]
    payload = subscription.prepare(event)
    name = None if subscription.action.name == "custom_event" else subscription.action.name
    return subscription.name, ga4_event(name, payload, int(NOW * 1_000_000)), request_fields(payload, config)
