"""Shared helpers of the Braze tests: a destination pointed at the double, and Segment events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.destinations.fakes import build
from tests.vendors.braze import BrazeDouble

API_KEY = "braze-unit-key"
TIME = "2024-11-28T13:26:00.000Z"


def destination(double: BrazeDouble, http: Any, tmp_path: Path, **overrides: Any) -> Any:
    settings = {"type": "braze", "api_key": API_KEY, "endpoint": double.url, **overrides}
    return build(settings, http, tmp_path)


def track(n: int, user: str | None = "u1", event: str | None = None, **properties: Any) -> dict:
    return {"type": "track", "event": event or f"Event {n}", "userId": user, "anonymousId": f"anon-{n}",
            "messageId": f"m-{n}", "timestamp": TIME, "properties": {"n": n, **properties}}


def identify(user: str | None = "u1", anonymous: str = "anon-1", **traits: Any) -> dict:
    return {"type": "identify", "userId": user, "anonymousId": anonymous, "messageId": "m-id",
            "timestamp": TIME, "traits": traits}
