"""First run where password log-in is on (the sandbox): with no console account configured,
one admin is created in the database with a random password shown once on stdout (never in
the log), stored argon2id-hashed, and never again; log-in goes through the Authenticator
interface. Outside the sandbox passwords are off: no account is made, none logs in."""

import io
import logging
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from services.router.ops.app import create_app
from services.router.ops.console.accounts import Role, hash_password
from services.router.ops.console.identity import (
    Identity,
    PasswordAuthenticator,
    console_account,
    ensure_first_admin,
)
from services.router.settings import RouterSettings
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def production(**more):
    return RouterSettings(
        environment="production",
        **ROUTER_SECRETS,
        console_secure_cookie=False,  # the test client speaks plain http
        **SECURE_KAFKA,
        **SECURE_HTTP,
        **more,
    )


async def first_run(sessions, settings, out):
    return await ensure_first_admin(
        sessions,
        configured=settings.console_users,
        password_login=settings.password_login,
        now=NOW,
        out=out,
    )


async def login(app, name, password):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as c:
        return await c.post("/console/login", data={"user": name, "password": password})


def test_outside_the_sandbox_there_is_no_default_account():
    assert production().console_users == []
    assert RouterSettings().console_users  # the sandbox keeps its two


async def test_the_first_start_creates_one_admin_and_shows_it_once(sessions, caplog):
    caplog.set_level(logging.DEBUG)
    settings = RouterSettings(console_users=[])  # the sandbox, without its two accounts
    out = io.StringIO()
    admin = await first_run(sessions, settings, out)
    assert admin is not None and admin.name == "admin" and len(admin.password) >= 20
    assert admin.password in out.getvalue() and "shown once" in out.getvalue()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert admin.password not in logged  # stdout only, never the log stream
    async with sessions() as s:
        (row,) = (await s.execute(select(console_account))).all()
    assert (row.name, row.role, row.origin) == ("admin", "admin", "first-run")
    assert row.password_hash.startswith("$argon2id$") and admin.password not in row.password_hash

    app = create_app(settings, sessions=sessions)
    ok = await login(app, "admin", admin.password)
    assert ok.status_code == 303 and "carebridge_console" in ok.headers["set-cookie"]
    assert (await login(app, "admin", "wrong password")).status_code == 401

    again = io.StringIO()  # a restart, or a second replica
    assert await first_run(sessions, settings, again) is None
    assert again.getvalue() == ""
    async with sessions() as s:
        assert [r.password_hash for r in (await s.execute(select(console_account))).all()] == [
            row.password_hash
        ]


async def test_no_admin_is_created_outside_the_sandbox_or_with_configured_accounts(sessions):
    named = [{"name": "asa", "role": "admin", "password_hash": hash_password("a passphrase")}]
    for settings in (RouterSettings(), RouterSettings(console_users=named), production()):
        out = io.StringIO()
        assert await first_run(sessions, settings, out) is None
        assert out.getvalue() == ""
    async with sessions() as s:
        assert (await s.execute(select(console_account))).all() == []


async def test_configured_accounts_come_before_stored_ones(sessions):
    async with sessions.begin() as s:
        await s.execute(
            console_account.insert().values(
                name="asa",
                role="viewer",
                password_hash=hash_password("stored one"),
                origin="first-run",
                created_at=NOW,
            )
        )
    configured = RouterSettings(
        console_users=[{"name": "asa", "role": "admin", "password_hash": hash_password("conf")}]
    ).console_users
    auth = PasswordAuthenticator(configured, sessions)
    assert await auth.authenticate("asa", "conf") == Identity("asa", Role.ADMIN)
    assert await auth.authenticate("asa", "stored one") is None
    assert await PasswordAuthenticator([], sessions).authenticate("asa", "stored one") == (
        Identity("asa", Role.VIEWER)
    )
    assert await auth.authenticate("nobody", "conf") is None


class FixedProvider:
    """Another identity provider (an OIDC one would sit here): the console needs no more."""

    async def authenticate(self, name, password):
        return Identity("oidc:asa", Role.OPERATOR) if password == "from-the-idp" else None


async def test_another_authenticator_can_be_plugged_in(sessions):
    from fastapi import FastAPI

    from services.router.ops.console.pages import install_console

    app = FastAPI()
    app.state.settings = RouterSettings()
    install_console(app, RouterSettings(), sessions, lambda: NOW, (), FixedProvider())
    assert (await login(app, "anyone", "from-the-idp")).status_code == 303
    assert (await login(app, "ops", "sandbox-ops-password")).status_code == 401


async def test_outside_the_sandbox_nobody_logs_in_with_a_password(sessions):
    async with sessions.begin() as s:  # an account a sandbox-era first run left behind
        await s.execute(
            console_account.insert().values(
                name="admin",
                role="admin",
                password_hash=hash_password("left behind"),
                origin="first-run",
                created_at=NOW,
            )
        )
    app = create_app(production(), sessions=sessions)
    assert (await login(app, "admin", "left behind")).status_code == 404
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as c:
        page = await c.get("/console/login")
    assert 'name="password"' not in page.text and "ROUTER_OIDC_ISSUER" in page.text


def test_outside_the_sandbox_configured_password_accounts_are_refused():
    named = [{"name": "asa", "role": "admin", "password_hash": hash_password("a passphrase")}]
    with pytest.raises(ValueError, match=r"local password accounts .* are for the sandbox only"):
        production(console_users=named)
