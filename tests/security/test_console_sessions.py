"""Console sessions on the server (services.router.ops.console.sessions): a cookie is worth
nothing after log-out, a changed role or a removed account ends a session at its next use,
idle and absolute timeouts hold on the app's clock, and each of these is in the access log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import delete, select, update

from services.messaging import sandbox_secrets
from services.router.audit.access_log import access_log
from services.router.ops.app import create_app
from services.router.ops.console import sessions as console_sessions
from services.router.ops.console.accounts import (
    SANDBOX_PASSWORDS,
    SANDBOX_USERS,
    ConsoleUser,
    Role,
    hash_password,
)
from services.router.ops.console.identity import console_account
from services.router.ops.console.sessions import console_session
from services.router.settings import RouterSettings
from tests.support.router import Clock

pytestmark = pytest.mark.security

KIM_PASSWORD = "kims-own-password-0123"


@pytest.fixture
def clock():
    return Clock()


def client(app, address="10.0.0.7"):
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url="http://router"
    )


@pytest.fixture
async def console(sessions, clock):
    async with client(create_app(RouterSettings(), sessions=sessions, clock=clock)) as c:
        yield c


async def log_in(c, user="ops", password=None):
    res = await c.post(
        "/console/login",
        data={"user": user, "password": password or SANDBOX_PASSWORDS[user], "next": "/console/"},
    )
    assert res.status_code == 303, res.text
    page = await c.get("/console/")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match is not None
    return match.group(1)


async def signed_in(c):
    """True if the console shows a page, False if it sends the browser to log in."""
    res = await c.get("/console/")
    assert res.status_code in (200, 303), res.status_code
    if res.status_code == 303:
        assert res.headers["location"].startswith("/console/login")
    return res.status_code == 200


async def security_events(sessions):
    async with sessions() as s:
        rows = (await s.execute(select(access_log).order_by(access_log.c.seq))).all()
    return [(r.kind, r.actor, r.role, r.reason) for r in rows]


async def stored_sessions(sessions):
    async with sessions() as s:
        return (await s.execute(select(console_session))).all()


async def test_the_cookie_holds_an_opaque_id_and_the_table_only_its_hash(console, sessions):
    await log_in(console)
    cookie = console.cookies[console_sessions.COOKIE]
    (row,) = await stored_sessions(sessions)
    assert len(cookie) >= 43 and "ops" not in cookie
    assert cookie not in row.id_hash and row.id_hash != cookie
    assert (row.account, row.role, row.origin, row.address) == (
        "ops",
        "operator",
        "password",
        "10.0.0.7",
    )
    assert row.expires_at - row.created_at == timedelta(hours=8)


def old_style_cookie(user: str, role: str, key: str) -> str:
    """A cookie as the console signed them before sessions moved to the server."""
    doc = {"u": user, "r": role, "e": 4102444800, "c": secrets.token_hex(16)}
    body = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode())
    return f"{body.decode()}.{hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}"


@pytest.mark.parametrize(
    "forged",
    [
        secrets.token_urlsafe(32),  # made up, shaped like a real one
        # the reviewer's: signed with the published sandbox secret, for a user who does not exist
        old_style_cookie("mallory", "admin", sandbox_secrets.CONSOLE_SECRET),
        old_style_cookie("ops", "admin", sandbox_secrets.CONSOLE_SECRET),
    ],
    ids=["made-up", "old-format-nobody", "old-format-ops"],
)
async def test_a_forged_cookie_is_sent_to_the_log_in(console, forged):
    await log_in(console)  # a real session exists: the forged one must not find it
    console.cookies.clear()
    console.cookies.set(console_sessions.COOKIE, forged, path="/console")
    res = await console.get("/console/audit")
    assert res.status_code == 303
    assert res.headers["location"] == "/console/login?next=%2Fconsole%2Faudit"


async def test_a_copied_cookie_is_useless_after_log_out(console, sessions, clock):
    csrf = await log_in(console)
    copied = console.cookies[console_sessions.COOKIE]
    out = await console.post("/console/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert console_sessions.COOKIE not in console.cookies
    console.cookies.set(console_sessions.COOKIE, copied, path="/console")
    assert not await signed_in(console)
    replay = await console.post(
        "/console/messages/00000000-0000-0000-0000-000000000000/replay",
        data={"reason": "after log-out", "csrf": csrf},
    )
    assert replay.status_code == 303 and replay.headers["location"].startswith("/console/login")
    (row,) = await stored_sessions(sessions)
    assert row.revoked_at == clock() and row.revoked_reason == "log-out from 10.0.0.7"


async def test_a_changed_role_ends_the_session_at_its_next_use(console, sessions, clock):
    async with sessions.begin() as s:
        await s.execute(
            console_account.insert().values(
                name="kim",
                role="admin",
                password_hash=hash_password(KIM_PASSWORD),
                origin="first-run",
                created_at=clock(),
            )
        )
    await log_in(console, "kim", KIM_PASSWORD)
    async with sessions.begin() as s:
        await s.execute(
            update(console_account).where(console_account.c.name == "kim").values(role="viewer")
        )
    assert not await signed_in(console)
    (row,) = await stored_sessions(sessions)
    assert row.revoked_reason == "role changed to viewer"
    assert ("session-revoked", "kim", "admin", "role changed to viewer") in await security_events(
        sessions
    )
    await log_in(console, "kim", KIM_PASSWORD)  # a new session, with the new role
    page = (await console.get("/console/")).text
    assert "<strong>kim</strong> (viewer)" in page


async def test_a_removed_account_ends_the_session_at_its_next_use(console, sessions, clock):
    async with sessions.begin() as s:
        await s.execute(
            console_account.insert().values(
                name="kim",
                role="operator",
                password_hash=hash_password(KIM_PASSWORD),
                origin="first-run",
                created_at=clock(),
            )
        )
    await log_in(console, "kim", KIM_PASSWORD)
    async with sessions.begin() as s:
        await s.execute(delete(console_account).where(console_account.c.name == "kim"))
    assert not await signed_in(console)
    (row,) = await stored_sessions(sessions)
    assert row.revoked_reason == "account removed"
    events = await security_events(sessions)
    assert ("session-revoked", "kim", "operator", "account removed") in events


async def test_a_configured_accounts_new_role_applies_to_sessions_begun_before(sessions, clock):
    """A restart (or another replica) with ROUTER_CONSOLE_USERS changed: the session from
    before is checked against the new configuration."""
    ops = SANDBOX_USERS[0]
    before = RouterSettings(console_users=[ops])
    after = RouterSettings(
        console_users=[ConsoleUser(name="ops", role=Role.VIEWER, password_hash=ops.password_hash)]
    )
    async with client(create_app(before, sessions=sessions, clock=clock)) as first:
        await log_in(first)
        cookie = first.cookies[console_sessions.COOKIE]
    async with client(create_app(before, sessions=sessions, clock=clock)) as same:
        same.cookies.set(console_sessions.COOKIE, cookie, path="/console")
        assert await signed_in(same)  # another replica, same configuration: still in
    async with client(create_app(after, sessions=sessions, clock=clock)) as changed:
        changed.cookies.set(console_sessions.COOKIE, cookie, path="/console")
        assert not await signed_in(changed)
    (row,) = await stored_sessions(sessions)
    assert row.revoked_reason == "role changed to viewer"


async def test_a_session_idle_for_20_minutes_has_ended(console, sessions, clock):
    await log_in(console)
    for _ in range(3):  # in use: each view moves its idle deadline
        clock.advance(19 * 60)
        assert await signed_in(console)
    clock.advance(20 * 60)
    assert not await signed_in(console)
    (row,) = await stored_sessions(sessions)
    assert row.revoked_at is None  # it ran out; nobody ended it


async def test_a_busy_session_ends_after_8_hours_all_the_same(console, clock):
    await log_in(console)
    for _ in range(8 * 4 - 1):
        clock.advance(15 * 60)
        assert await signed_in(console)
    clock.advance(15 * 60 - 1)
    assert await signed_in(console)
    clock.advance(1)
    assert not await signed_in(console)


async def test_last_seen_is_written_at_most_every_30_seconds(console, sessions, clock):
    await log_in(console)
    (first,) = await stored_sessions(sessions)
    clock.advance(29)
    assert await signed_in(console)
    (unchanged,) = await stored_sessions(sessions)
    assert unchanged.last_seen_at == first.last_seen_at
    clock.advance(1)
    assert await signed_in(console)
    (moved,) = await stored_sessions(sessions)
    assert moved.last_seen_at == clock()


async def test_a_log_in_prunes_ended_sessions(console, sessions, clock):
    csrf = await log_in(console)
    await console.post("/console/logout", data={"csrf": csrf})
    await log_in(console, "viewer")
    clock.advance(21 * 60)  # idle: over, and the prune of the next log-in waits no more
    await log_in(console)
    rows = await stored_sessions(sessions)
    assert [(r.account, r.revoked_at) for r in rows] == [("ops", None)]


async def test_log_in_log_out_and_revocation_are_in_the_access_log_without_passwords(
    console, sessions
):
    bad = await console.post("/console/login", data={"user": "ops", "password": "hunter2-typo"})
    assert bad.status_code == 401
    csrf = await log_in(console)
    await console.post("/console/logout", data={"csrf": csrf})
    events = await security_events(sessions)
    assert events == [
        ("login-failed", "ops", "-", "wrong name or password, from 10.0.0.7"),
        ("login-ok", "ops", "operator", "password log-in from 10.0.0.7"),
        ("logout", "ops", "operator", "log-out from 10.0.0.7"),
    ]
    async with sessions() as s:
        every_value = [str(v) for r in (await s.execute(select(access_log))).all() for v in r]
    every_value += [str(v) for r in await stored_sessions(sessions) for v in r]
    assert not any(
        secret in value
        for value in every_value
        for secret in ("hunter2-typo", SANDBOX_PASSWORDS["ops"])
    )


async def test_a_session_from_an_identity_provider_is_checked_with_it_and_ends_without_it(
    sessions, clock
):
    """OIDC log-ins start sessions through the same store; no local account backs them, so
    they are checked again with the identity provider every 5 minutes (see
    test_oidc_session_recheck.py). A router with no provider to ask, or a session with no
    refresh token, cannot check: the session is revoked at its first check, not kept until
    the timeouts."""
    from services.router.ops.console.identity import Identity
    from services.router.ops.console.sessions import Origin

    app = create_app(RouterSettings(), sessions=sessions, clock=clock)
    cookie = await app.state.console_sessions.start(
        Identity("eva", Role.OPERATOR),
        origin=Origin.OIDC,
        address="10.0.0.9",
        now=clock(),
        hsa_id="SE2321000016-1234",
        refresh_token="a-refresh-token",
    )
    async with client(app) as c:
        c.cookies.set(console_sessions.COOKIE, cookie, path="/console")
        page = await c.get("/console/")
        assert page.status_code == 200 and "<strong>eva</strong> (operator)" in page.text
        clock.advance(5 * 60)
        assert not await signed_in(c)
    (row,) = await stored_sessions(sessions)
    why = "no identity provider to check the session with"
    assert (row.origin, row.hsa_id, row.revoked_reason) == ("oidc", "SE2321000016-1234", why)
    assert "a-refresh-token" not in row.refresh_sealed  # sealed in the row
    events = await security_events(sessions)
    assert ("login-ok", "eva", "operator", "oidc log-in from 10.0.0.9") in events
    assert ("session-revoked", "eva", "operator", why) in events
