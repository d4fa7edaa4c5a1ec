"""Building the amplitude destination against the Amplitude double, in process, and reading its outcomes."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from collector.config.units import decode_hook
from collector.destinations.amplitude import Amplitude, AmplitudeSettings
from collector.destinations.base import BuildContext, Outcome
from collector.metrics import Metrics
from tests.vendors.amplitude import AmplitudeDouble


def settings(endpoint: str | None = None, **overrides: Any) -> AmplitudeSettings:
    data = {"type": "amplitude", "api_key": "amp-key", **({"endpoint": endpoint} if endpoint else {}), **overrides}
    return msgspec.convert(data, AmplitudeSettings, strict=False, dec_hook=decode_hook)


def build(double: AmplitudeDouble, http: aiohttp.ClientSession, **overrides: Any) -> Amplitude:
    destination = Amplitude("amplitude", settings(double.url, **overrides), BuildContext(http, ""))
    destination.bind_metrics(Metrics())
    return destination


def kinds(outcome: Outcome, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


def reasons(outcome: Outcome, size: int) -> list[str]:
    return [o.reason for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.reason] * size


def track(user: str | None, n: int, event: str = "Bought", anonymous: str | None = None, **properties: Any) -> dict:
    return {"type": "track", "event": event, "userId": user, "anonymousId": anonymous, "messageId": f"m{n}",
            "timestamp": "2024-11-28T13:26:00.123Z", "properties": {"n": n, **properties}}
