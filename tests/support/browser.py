"""The console in a real Chromium: what the console fixture serves, logging in, and
screenshots (test-output/screenshots/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Page, expect

from services.router.ops.console.accounts import SANDBOX_PASSWORDS
from tests.support.console_data import Seeded

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@dataclass(frozen=True)
class Console:
    url: str
    seeded: Seeded


async def log_in(page: Page, console: Console, user: str = "ops") -> None:
    await page.goto(f"{console.url}/console/")
    await expect(page).to_have_url(f"{console.url}/console/login?next=%2Fconsole%2F")
    await page.get_by_label("Användarnamn").fill(user)
    await page.get_by_label("Lösenord").fill(SANDBOX_PASSWORDS[user])
    await page.get_by_role("button", name="Logga in").click()
    await expect(page.get_by_role("heading", name="Översikt", level=1)).to_be_visible()


async def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
