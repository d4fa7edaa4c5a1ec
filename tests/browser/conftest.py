"""Real-browser tests: headless Debian Chromium (Python playwright) against the real collector
(``python -m collector run``), with test pages served from a second origin so CORS is exercised:
pages on ``http://localhost:<port>``, the collector on ``http://127.0.0.1:<port>``.

Segment's official code (``@segment/analytics-next``, ``@segment/snippet``) is installed from npm
into ``tests/browser/node_modules`` the first time (``package.json`` here pins the versions).
Helpers are in ``harness.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NODE_MODULES,
    CollectorProcess,
    Site,
    ensure_npm_packages,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every async test here runs in the session's event loop, with the shared browser."""
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE) and pytest_asyncio.is_async_test(item):
            item.add_marker(marker, append=False)


@pytest.fixture(scope="session")
def npm_packages() -> Path:
    ensure_npm_packages()
    return NODE_MODULES


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def collector(tmp_path_factory: pytest.TempPathFactory):
    """The shared collector: default browser settings."""
    process = CollectorProcess(tmp_path_factory.mktemp("collector"))
    await process.start()
    yield process
    await process.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def make_collector(tmp_path: Path):
    """Starts collectors with their own config (stopped at the end of the test)."""
    started: list[CollectorProcess] = []

    async def make(name: str = "c", **kwargs: Any) -> CollectorProcess:
        process = CollectorProcess(tmp_path / name, **kwargs)
        await process.start()
        started.append(process)
        return process

    yield make
    for process in started:
        await process.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def site():
    """The second origin, serving the test pages."""
    s = Site()
    await s.start()
    yield s
    await s.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium():
    from playwright.async_api import async_playwright

    assert os.path.exists(CHROMIUM), "apt-get install chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(chromium):
    """A fresh browser profile (cookies, localStorage) for one test."""
    ctx = await chromium.new_context()
    yield ctx
    await ctx.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context):
    """A page of that profile; the test fails if the page throws a JavaScript error."""
    p = await context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda error: errors.append(str(error)))
    yield p
    assert not errors, f"JavaScript errors on the page: {errors}"
