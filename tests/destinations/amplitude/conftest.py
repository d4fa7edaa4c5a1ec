"""Fixtures: an HTTP session and a started Amplitude double (project ``amp-key``, US)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.vendors.amplitude import AmplitudeDouble


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def double():
    async with AmplitudeDouble(api_key="amp-key") as amplitude:
        yield amplitude
