"""The console in a real Chromium (Debian's package, driven by Playwright) against the router
app on a real socket, over a delivery log filled by the router itself (tests/support/console_data).
Screenshots go to test-output/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Page, async_playwright

from sandbox.stack import free_port
from services.messaging.db import utcnow
from tests.support.browser import Console
from tests.support.console_data import seed
from tests.support.router import Clock
from tests.support.router_process import served_router

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def console(sessions, database_url: str) -> AsyncIterator[Console]:
    clock = Clock()
    clock.now = utcnow() - timedelta(minutes=20)  # inside the dashboard's 24 h
    seeded = await seed(sessions, clock)
    with served_router(database_url, free_port()) as url:
        yield Console(url, seeded)


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A fresh Chromium per test (the event loop is the test's own)."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(10_000)
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await browser.close()
