"""Building a Mixpanel destination against the double, and Segment spec events to send it."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import msgspec

from collector.config.units import decode_hook
from collector.destinations.base import BuildContext, Outcome
from collector.destinations.mixpanel import Mixpanel, MixpanelSettings
from collector.metrics import Metrics
from tests.destinations.fakes import envelopes
from tests.vendors.mixpanel import MixpanelDouble

from .expected import SECRET, TOKEN

WHEN = "2024-11-28T13:26:00.123Z"
WHEN_MS = 1732800360123


def build(double: MixpanelDouble, http: aiohttp.ClientSession, **settings: Any) -> Mixpanel:
    config = settings_of({"type": "mixpanel", "project_token": TOKEN, "api_secret": SECRET,
                          "endpoint": double.url, **settings})
    destination = Mixpanel("mixpanel", config, BuildContext(http, ""))
    destination.bind_metrics(Metrics())
    return destination


def settings_of(data: dict[str, Any]) -> MixpanelSettings:
    """Settings decoded as the config loader decodes them."""
    return msgspec.convert(data, MixpanelSettings, strict=False, dec_hook=decode_hook)


async def send(destination: Mixpanel, events: list[dict]) -> Outcome:
    return await destination.send(envelopes(events))


def kinds(outcome: Outcome, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size


def reasons(outcome: Outcome, size: int) -> list[str]:
    return [o.reason for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.reason] * size


def call(kind: str, user: str | None = "u1", anonymous: str | None = "a1", **fields: Any) -> dict:
    event = {"type": kind, "messageId": str(uuid.uuid4()), "timestamp": WHEN, "receivedAt": WHEN,
             "userId": user, "anonymousId": anonymous, "context": {}, **fields}
    return {key: value for key, value in event.items() if value is not None}


def track(name: str, properties: dict | None = None, **fields: Any) -> dict:
    return call("track", event=name, properties=properties or {}, **fields)


def imported(double: MixpanelDouble, name: str | None = None) -> list[dict]:
    return [e for e in double.imported if name is None or e["event"] == name]
