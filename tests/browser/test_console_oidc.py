"""Log-in through the identity provider, the whole flow in a real Chromium: the console sends
the browser to a real OpenID Connect provider (panva's oidc-provider, sandbox/oidc.py), the
person logs in on its form, and the console signs them in with the name and HSA-id from the
ID token. A person whose claims give no carebridge role is refused and gets no session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page, expect

from sandbox.oidc import SANDBOX_PEOPLE, running
from sandbox.stack import free_port
from tests.support.browser import shot
from tests.support.router_process import served_router

pytestmark = [pytest.mark.browser, pytest.mark.oidc]


@dataclass(frozen=True)
class OidcConsole:
    url: str
    issuer: str


@pytest.fixture
async def oidc_console(sessions, database_url: str) -> AsyncIterator[OidcConsole]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([f"{url}/console/oidc/callback"]) as idp:
        more = {
            "oidc_issuer": idp.issuer,
            "oidc_client_id": idp.client_id,
            "oidc_redirect_url": f"{url}/console/oidc/callback",
            "oidc_api_audience": idp.audience,
        }
        with served_router(database_url, port, more) as served:
            yield OidcConsole(served, idp.issuer)


async def log_in_at_the_provider(page: Page, console: OidcConsole, login: str) -> None:
    await page.goto(f"{console.url}/console/")
    await expect(page).to_have_url(f"{console.url}/console/login?next=%2Fconsole%2F")
    await page.get_by_role("link", name="Logga in med SITHS eller Freja eID").click()
    await expect(page.get_by_role("heading", name="Sandbox identity provider")).to_be_visible()
    assert page.url.startswith(console.issuer)
    await page.get_by_label("Login").fill(login)
    await page.get_by_label("Password").fill(SANDBOX_PEOPLE[login].password)
    await page.get_by_role("button", name="Log in").click()


async def test_a_person_logs_in_through_the_identity_provider(page: Page, oidc_console):
    anna = SANDBOX_PEOPLE["anna"]
    await log_in_at_the_provider(page, oidc_console, "anna")
    await expect(page.get_by_role("heading", name="Översikt", level=1)).to_be_visible()
    assert page.url == f"{oidc_console.url}/console/"
    header = page.get_by_text("Inloggad som")
    await expect(header).to_contain_text(f"{anna.name} ({anna.hsa_id})")
    await expect(header).to_contain_text("admin")
    await shot(page, "oidc-signed-in")
    # the console works as for any log-in: the session is the console's own
    await page.get_by_role("link", name="Granskningslogg").click()
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.get_by_text("Inloggad som")).to_contain_text(anna.name)


async def test_a_wrong_password_at_the_provider_signs_nobody_in(page: Page, oidc_console):
    await page.goto(f"{oidc_console.url}/console/login")
    await page.get_by_role("link", name="Logga in med SITHS eller Freja eID").click()
    await page.get_by_label("Login").fill("anna")
    await page.get_by_label("Password").fill("wrong")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    await page.goto(f"{oidc_console.url}/console/")
    await expect(page).to_have_url(f"{oidc_console.url}/console/login?next=%2Fconsole%2F")


async def test_a_person_without_a_carebridge_role_is_refused(page: Page, oidc_console):
    await log_in_at_the_provider(page, oidc_console, "nils")
    await expect(page.get_by_role("heading", name="403", level=1)).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_text("your account gives no role in carebridge")
    assert page.url.startswith(f"{oidc_console.url}/console/oidc/callback")
    await shot(page, "oidc-no-role")
    await page.goto(f"{oidc_console.url}/console/")  # no session was made
    await expect(page).to_have_url(f"{oidc_console.url}/console/login?next=%2Fconsole%2F")


async def test_a_callback_this_browser_did_not_start_is_refused(page: Page, oidc_console):
    await page.goto(f"{oidc_console.url}/console/oidc/callback?state=forged&code=stolen")
    await expect(page.get_by_role("heading", name="400", level=1)).to_be_visible()
    await page.goto(f"{oidc_console.url}/console/")
    await expect(page).to_have_url(f"{oidc_console.url}/console/login?next=%2Fconsole%2F")
