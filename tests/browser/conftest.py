"""The console in a real Chromium (Debian's package, driven by Playwright) against the router
app on a real socket, over a delivery log filled by the router itself (tests/support/console_data).
Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from sandbox.stack import free_port
from services.messaging.db import utcnow
from tests.support.browser import Console
from tests.support.console_data import seed
from tests.support.router import Clock

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the router app exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling with a deadline
    raise TimeoutError(f"{url} did not answer within {deadline_s} s")


@pytest.fixture
async def console(sessions, database_url: str) -> AsyncIterator[Console]:
    clock = Clock()
    clock.now = utcnow() - timedelta(minutes=20)  # inside the dashboard's 24 h
    seeded = await seed(sessions, clock)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before the test awaits anything)
        [sys.executable, "-m", "tests.browser.serve", database_url, str(port)],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield Console(url, seeded)
    finally:
        proc.terminate()
        proc.wait(10)


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
