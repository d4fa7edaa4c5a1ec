"""Shared helpers of the Customer.io tests: a destination built on the double."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.destinations.fakes import build, client_session
from tests.vendors.customerio import CustomerIODouble

SITE_ID, API_KEY = "site-unit", "cio-unit-key"


@pytest.fixture
async def double():
    async with CustomerIODouble(site_id=SITE_ID, api_key=API_KEY) as running:
        yield running


@pytest.fixture
async def http():
    async with client_session() as (session, _):
        yield session


def destination(double: CustomerIODouble, http: Any, tmp_path: Path, **overrides: Any) -> Any:
    settings = {"type": "customerio", "site_id": SITE_ID, "api_key": API_KEY, "endpoint": double.url, **overrides}
    return build(settings, http, tmp_path)


def kinds(outcome: Any, size: int) -> list[str]:
    return [o.kind for o in outcome.per_event] if outcome.kind == "mixed" else [outcome.kind] * size
