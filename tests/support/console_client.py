"""The console over HTTP without a browser (an httpx client on the router app): logging in
and reading what a page shows, such as the CSRF token its forms carry."""

from __future__ import annotations

import re

import httpx

from services.router.ops.console.accounts import SANDBOX_PASSWORDS


def found(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text`` (matching across lines); it must be there."""
    match = re.search(pattern, text, re.S)
    assert match is not None, pattern
    return match.group(1)


async def log_in(client: httpx.AsyncClient, user: str = "ops") -> str:
    """Log in as one of the sandbox accounts; returns the session's CSRF token."""
    res = await client.post(
        "/console/login",
        data={"user": user, "password": SANDBOX_PASSWORDS[user], "next": "/console/"},
    )
    assert res.status_code == 303, res.text
    page = await client.get("/console/")
    return found(r'name="csrf" value="([0-9a-f]+)"', page.text)
