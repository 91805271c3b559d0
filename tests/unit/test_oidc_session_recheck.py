"""A console session from the identity provider is checked with it again (issue 19), with a
fake provider over ``httpx.MockTransport`` that speaks the refresh-token grant, rotates its
refresh tokens and signs fresh ID tokens: a person removed or demoted at the provider loses
the console at the next check, a provider that does not answer ends sessions after the
grace, and every revocation is in the access log."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import select

from services.router.audit.access_log import access_log
from services.router.ops.app import create_app
from services.router.ops.console import sessions as console_sessions
from services.router.ops.console.accounts import Role
from services.router.ops.console.identity import Identity
from services.router.ops.console.sessions import Origin, console_session
from services.router.ops.oidc.provider import IdentityProvider
from services.router.ops.oidc.sealed import seal_token, unseal_token
from services.router.settings import RouterSettings
from tests.support.oidc_keys import HSA_ID, ISSUER, SigningKey, person_claims
from tests.support.router import Clock

pytestmark = pytest.mark.security

CLIENT = "carebridge-console"
KEY = SigningKey.rsa("k1")
MINUTE = 60


class FakeIdp:
    """The provider's token endpoint for refresh tokens: each is good once (rotated), a
    revoked grant answers ``invalid_grant``, and ``down`` makes it unreachable."""

    def __init__(self, clock: Clock, *, key: SigningKey = KEY) -> None:
        self.clock = clock
        self.key = key
        self.claims: dict[str, Any] = {}
        self.live = {"r0"}
        self.spent: list[str] = []
        self.down = False
        self.requests = 0

    def revoke_grant(self) -> None:
        self.live.clear()

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if path.endswith("/jwks"):
            return httpx.Response(200, json={"keys": [KEY.jwk()]})
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form["grant_type"] == "refresh_token" and form["client_id"] == CLIENT
        token = form["refresh_token"]
        self.spent.append(token)
        if token not in self.live:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.live.discard(token)
        fresh = f"r{len(self.spent)}"
        self.live.add(fresh)
        claims = person_claims(self.clock(), aud=CLIENT, **self.claims)
        signed = self.key.sign({k: v for k, v in claims.items() if v is not None})
        return httpx.Response(200, json={"id_token": signed, "refresh_token": fresh})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def idp(clock):
    return FakeIdp(clock)


def app_with(sessions, clock, idp: FakeIdp, **more: Any):
    config = RouterSettings(
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT,
        oidc_redirect_url="https://router.example/console/oidc/callback",
        console_secure_cookie=False,
        **more,
    )
    provider = IdentityProvider(ISSUER, transport=httpx.MockTransport(idp.handler))
    return create_app(config, sessions=sessions, clock=clock, identity_provider=provider)


async def signed_in_as(
    app,
    clock,
    *,
    refresh_token: str | None = "r0",  # noqa: S107 (the fake provider's first refresh token)
) -> httpx.AsyncClient:
    cookie = await app.state.console_sessions.start(
        Identity("Anna Admin", Role.ADMIN, HSA_ID),
        origin=Origin.OIDC,
        address="10.0.0.9",
        now=clock(),
        refresh_token=refresh_token,
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router")
    client.cookies.set(console_sessions.COOKIE, cookie, path="/console")
    return client


async def page(client: httpx.AsyncClient) -> bool:
    """True if the console shows a page, False if it sends the browser to log in."""
    res = await client.get("/console/")
    assert res.status_code in (200, 303), res.status_code
    if res.status_code == 303:
        assert res.headers["location"].startswith("/console/login")
    return res.status_code == 200


async def the_session(sessions):
    async with sessions() as s:
        (row,) = (await s.execute(select(console_session))).all()
    return row


async def revocations(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as s:
        rows = (await s.execute(select(access_log).order_by(access_log.c.seq))).all()
    return [(r.actor, r.role, r.reason) for r in rows if r.kind == "session-revoked"]


async def test_a_session_is_checked_at_most_every_interval_with_a_rotated_refresh_token(
    sessions, clock, idp
):
    client = await signed_in_as(app_with(sessions, clock, idp), clock)
    assert await page(client)
    clock.advance(4 * MINUTE)
    assert await page(client) and idp.spent == []  # not due yet
    clock.advance(2 * MINUTE)
    assert await page(client) and await page(client) and idp.spent == ["r0"]
    clock.advance(5 * MINUTE)
    assert await page(client) and idp.spent == ["r0", "r1"]  # the provider's next one
    await client.aclose()
    row = await the_session(sessions)
    assert row.revoked_at is None and row.checked_at == clock()
    assert "r2" not in row.refresh_sealed  # sealed, and never in the cookie
    assert (
        unseal_token(
            row.refresh_sealed, secret=RouterSettings().console_secret, session=row.id_hash
        )
        == "r2"
    )
    assert all("r2" not in value for value in client.cookies.values())
    assert await revocations(sessions) == []


async def test_a_person_removed_at_the_provider_is_sent_to_log_in_at_the_next_check(
    sessions, clock, idp
):
    client = await signed_in_as(app_with(sessions, clock, idp), clock)
    idp.revoke_grant()
    clock.advance(5 * MINUTE)
    assert not await page(client)
    assert not await page(client) and idp.spent == ["r0"]  # revoked, not asked again
    await client.aclose()
    row = await the_session(sessions)
    assert row.revoked_reason == "the identity provider refused the session (invalid_grant)"
    assert await revocations(sessions) == [(f"Anna Admin ({HSA_ID})", "admin", row.revoked_reason)]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"roles": ["carebridge-operator"]}, "role changed to operator at the identity provider"),
        ({"roles": ["some-other-group"]}, "no carebridge role at the identity provider any more"),
        ({"hsa_id": "SE2321000131-E000000000002"}, "the identity provider names another person"),
        ({"iss": "https://evil.example"}, "the refreshed ID token was refused (BadClaims)"),
    ],
)
async def test_a_changed_role_or_a_refused_id_token_revokes_the_session(
    sessions, clock, idp, claims, reason
):
    client = await signed_in_as(app_with(sessions, clock, idp), clock)
    idp.claims = claims
    clock.advance(5 * MINUTE)
    assert not await page(client)
    await client.aclose()
    assert await revocations(sessions) == [(f"Anna Admin ({HSA_ID})", "admin", reason)]


async def test_an_unreachable_provider_keeps_the_session_for_the_grace_then_ends_it(
    sessions, clock, idp
):
    client = await signed_in_as(app_with(sessions, clock, idp), clock)
    idp.down = True
    clock.advance(6 * MINUTE)
    assert await page(client) and idp.requests == 1  # within the grace
    clock.advance(10)
    assert await page(client) and idp.requests == 1  # asked again after 30 s, not before
    clock.advance(30)
    assert await page(client) and idp.requests == 2
    clock.advance(8 * MINUTE)  # 14 min since the last good check: still within 5 + 10
    assert await page(client)
    clock.advance(2 * MINUTE)  # 16 min: past it
    assert not await page(client)
    await client.aclose()
    assert await revocations(sessions) == [
        (f"Anna Admin ({HSA_ID})", "admin", "the identity provider did not answer within the grace")
    ]


async def test_a_provider_back_within_the_grace_keeps_the_session(sessions, clock, idp):
    client = await signed_in_as(app_with(sessions, clock, idp), clock)
    idp.down = True
    clock.advance(6 * MINUTE)
    assert await page(client)
    idp.down = False
    clock.advance(MINUTE)
    assert await page(client) and idp.spent == ["r0"]
    clock.advance(10 * MINUTE)
    assert await page(client) and idp.spent == ["r0", "r1"]
    await client.aclose()
    assert await revocations(sessions) == []


async def test_with_no_grace_an_unreachable_provider_ends_the_session_at_once(sessions, clock, idp):
    app = app_with(sessions, clock, idp, oidc_session_grace_s=0)
    client = await signed_in_as(app, clock)
    idp.down = True
    clock.advance(5 * MINUTE)
    assert not await page(client)
    await client.aclose()


async def test_concurrent_requests_spend_the_refresh_token_once(sessions, clock, idp):
    app = app_with(sessions, clock, idp)
    client = await signed_in_as(app, clock)
    clock.advance(5 * MINUTE)
    answers = await asyncio.gather(*(page(client) for _ in range(4)))
    await client.aclose()
    assert all(answers) and idp.spent == ["r0"]


async def test_a_session_the_provider_gave_no_refresh_token_ends_at_its_first_check(
    sessions, clock, idp
):
    client = await signed_in_as(app_with(sessions, clock, idp), clock, refresh_token=None)
    clock.advance(4 * MINUTE)
    assert await page(client)
    clock.advance(MINUTE)
    assert not await page(client)
    await client.aclose()
    assert await revocations(sessions) == [
        (
            f"Anna Admin ({HSA_ID})",
            "admin",
            "no refresh token to check with the identity provider",
        )
    ]


def test_a_sealed_refresh_token_opens_only_for_its_session_and_key():
    sealed = seal_token("refresh-me", secret="s" * 32, session="row-1")
    assert "refresh-me" not in sealed
    assert unseal_token(sealed, secret="s" * 32, session="row-1") == "refresh-me"
    assert unseal_token(sealed, secret="s" * 32, session="row-2") is None
    assert unseal_token(sealed, secret="t" * 32, session="row-1") is None
    assert unseal_token(sealed[:-4] + "AAAA", secret="s" * 32, session="row-1") is None
