from __future__ import annotations

import aiohttp
import pytest

from tests.vendors.mixpanel import MixpanelDouble

from .expected import SECRET, TOKEN


@pytest.fixture
async def double():
    async with MixpanelDouble(api_secret=SECRET, project_token=TOKEN, accept_token_auth=False) as started:
        yield started


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as client:
        yield client
