from __future__ import annotations

import pytest

from tests.destinations.fakes import client_session
from tests.vendors.braze import BrazeDouble

from .support import API_KEY


@pytest.fixture
async def double():
    async with BrazeDouble(api_key=API_KEY) as running:
        yield running


@pytest.fixture
async def http():
    async with client_session() as (session, _):
        yield session
