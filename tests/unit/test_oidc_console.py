"""The console's OIDC callback in process (httpx.ASGITransport), with a fake provider that
signs its ID tokens with a key made here and checks the PKCE verifier against the challenge
it was sent: a session only for the right state, verifier, nonce and claims."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from services.router.audit.access_log import access_log, verify_chain
from services.router.ops.app import create_app
from services.router.ops.console import sessions as console_sessions
from services.router.ops.oidc.pkce import ATTEMPT_COOKIE, challenge_of
from services.router.ops.oidc.provider import (
    Discovery,
    GrantRefused,
    ProviderUnavailable,
    StaticKeys,
    TokenResponse,
)
from services.router.ops.oidc.sealed import unseal_token
from services.router.settings import RouterSettings
from tests.support.oidc_keys import HSA_ID, ISSUER, SigningKey, key_set, person_claims
from tests.support.settings import ROUTER_SECRETS, SECURE_HTTP, SECURE_KAFKA

pytestmark = pytest.mark.security

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CLIENT = "carebridge-console"
CALLBACK = "https://router.example/console/oidc/callback"
KEY = SigningKey.rsa("k1")


class FakeProvider(StaticKeys):
    """The provider's side of the flow: it remembers the challenge and the nonce it was
    sent, and issues an ID token with whatever claims the test chose."""

    def __init__(self, **claims: Any) -> None:
        super().__init__(key_set(KEY))
        self.claims = claims
        self.challenge = self.nonce = ""
        self.exchanged: list[str] = []
        self.down = False
        self.refuse_code = False

    async def discovery(self) -> Discovery:
        return Discovery(ISSUER, f"{ISSUER}/auth", f"{ISSUER}/token", f"{ISSUER}/jwks")

    async def exchange(
        self,
        code: str,
        *,
        verifier: str,
        redirect_uri: str,
        client_id: str,
        client_secret: str | None,
    ) -> TokenResponse:
        if self.down:
            raise ProviderUnavailable("token endpoint: ConnectError")
        if self.refuse_code:
            raise GrantRefused("invalid_grant")
        assert challenge_of(verifier) == self.challenge  # PKCE: the verifier of that challenge
        assert (redirect_uri, client_id) == (CALLBACK, CLIENT)
        self.exchanged.append(code)
        claims = person_claims(NOW, **{"aud": CLIENT, "nonce": self.nonce, **self.claims})
        signed = KEY.sign({k: v for k, v in claims.items() if v is not None})
        return TokenResponse(signed, None, refresh_token=f"refresh-of-{code}")

    async def refresh(
        self, refresh_token: str, *, client_id: str, client_secret: str | None
    ) -> TokenResponse:
        raise GrantRefused("invalid_grant")  # not asked here: see test_oidc_session_recheck


def settings(**more: Any) -> RouterSettings:
    base = {
        "oidc_issuer": ISSUER,
        "oidc_client_id": CLIENT,
        "oidc_redirect_url": CALLBACK,
        "console_secure_cookie": False,
    }
    return RouterSettings(**{**base, **more})


async def log_in(
    sessions, provider: FakeProvider, *, config: RouterSettings | None = None, app=None
):
    app = app or create_app(
        config or settings(), sessions=sessions, clock=lambda: NOW, identity_provider=provider
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.0.0.8", 50000)),
        base_url="http://router",
    )
    start = await client.get("/console/oidc/start", params={"next": "/console/incidents"})
    assert start.status_code == 303
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and "code_verifier" not in query
    provider.challenge, provider.nonce = query["code_challenge"][0], query["nonce"][0]
    return client, query["state"][0]


async def session_user(client: httpx.AsyncClient, answer: httpx.Response) -> str | None:
    """The user of the session the answer's cookie names, as the app's store finds it."""
    cookie = (answer.cookies.get(console_sessions.COOKIE) or "").strip('"')  # as set (quoted)
    app = client._transport.app  # type: ignore[attr-defined]  # the ASGI app under test
    found = await app.state.console_sessions.lookup(cookie or None, now=NOW)
    return found.user if found else None


async def test_the_right_answer_signs_the_person_in_with_name_and_hsa_id(sessions):
    provider = FakeProvider()
    client, state = await log_in(sessions, provider)
    done = await client.get("/console/oidc/callback", params={"state": state, "code": "c1"})
    await client.aclose()
    assert done.status_code == 200 and provider.exchanged == ["c1"]
    assert await session_user(client, done) == f"Anna Admin ({HSA_ID})"
    assert 'url=/console/incidents"' in done.text  # on to where the person was going
    async with sessions() as s:  # the provider's refresh token, sealed in the session's row
        (row,) = (await s.execute(select(console_sessions.console_session))).all()
    assert "refresh-of-c1" not in row.refresh_sealed and "refresh-of-c1" not in str(done.cookies)
    secret = settings().console_secret
    assert unseal_token(row.refresh_sealed, secret=secret, session=row.id_hash) == "refresh-of-c1"


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"roles": ["some-other-group"]}, 403),
        ({"roles": None}, 403),
        ({"hsa_id": None}, 403),
        ({"iss": "https://evil.example"}, 401),
        ({"aud": "another-client"}, 401),
        ({"exp": int(NOW.timestamp()) - 3600}, 401),
    ],
)
async def test_a_wrong_id_token_signs_nobody_in(sessions, claims, status):
    client, state = await log_in(sessions, FakeProvider(**claims))
    done = await client.get("/console/oidc/callback", params={"state": state, "code": "c1"})
    await client.aclose()
    assert done.status_code == status and await session_user(client, done) is None


async def test_another_log_ins_nonce_signs_nobody_in(sessions):
    provider = FakeProvider()
    client, state = await log_in(sessions, provider)
    provider.nonce = "the nonce of someone else's log-in"
    done = await client.get("/console/oidc/callback", params={"state": state, "code": "c1"})
    await client.aclose()
    assert done.status_code == 401 and await session_user(client, done) is None


async def test_a_wrong_state_or_no_attempt_is_refused_before_any_exchange(sessions):
    provider = FakeProvider()
    client, state = await log_in(sessions, provider)
    wrong = await client.get("/console/oidc/callback", params={"state": "x", "code": "c1"})
    client.cookies.delete(ATTEMPT_COOKIE, path="/console/oidc")
    gone = await client.get("/console/oidc/callback", params={"state": state, "code": "c1"})
    await client.aclose()
    assert (wrong.status_code, gone.status_code) == (400, 400)
    assert provider.exchanged == []


async def test_outside_the_sandbox_the_log_in_page_offers_the_identity_provider_only(sessions):
    production = settings(environment="production", **ROUTER_SECRETS, **SECURE_KAFKA, **SECURE_HTTP)
    app = create_app(production, sessions=sessions, identity_provider=FakeProvider())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://router"
    ) as client:
        page = await client.get("/console/login")
        post = await client.post("/console/login", data={"user": "ops", "password": "x"})
    assert 'href="/console/oidc/start?next=' in page.text and 'name="password"' not in page.text
    assert post.status_code == 404


def test_the_settings_refuse_an_incomplete_or_plain_http_identity_provider():
    with pytest.raises(ValueError, match="oidc_issuer needs oidc_client_id"):
        RouterSettings(oidc_issuer=ISSUER)
    with pytest.raises(ValueError, match="oidc_api_audience needs oidc_issuer"):
        RouterSettings(oidc_api_audience="https://api")
    with pytest.raises(ValueError) as refused:
        settings(
            environment="production",
            oidc_issuer="http://idp.region.example",
            oidc_redirect_url="http://router.example/console/oidc/callback",
            **ROUTER_SECRETS,
            **SECURE_KAFKA,
            **SECURE_HTTP,
        )
    assert "ROUTER_OIDC_ISSUER: plain http" in str(refused.value)
    assert "ROUTER_OIDC_REDIRECT_URL: plain http" in str(refused.value)
    assert settings(oidc_roles={"drift": "operator"}).oidc_rules().roles == {"drift": "operator"}


async def failed_log_ins(sessions) -> list[tuple[str, str, str]]:
    async with sessions() as s:
        rows = (await s.execute(select(access_log).order_by(access_log.c.seq))).all()
    return [(r.actor, r.role, r.reason) for r in rows if r.kind == "login-failed"]


def refused(code: str) -> str:
    return f"oidc log-in refused: {code}, from 10.0.0.8"


@pytest.mark.parametrize(
    ("claims", "code", "actor"),
    [
        ({"roles": ["some-other-group"]}, "no-role", HSA_ID),
        ({"roles": None}, "no-role", HSA_ID),
        ({"hsa_id": None}, "not-a-person", "unknown person"),
        ({"hsa_id": "19121212-1212"}, "not-a-person", "unknown person"),  # never a personnummer
        ({"iss": "https://evil.example"}, "id-token-refused", "unknown person"),
        ({"aud": "another-client"}, "id-token-refused", "unknown person"),
        ({"exp": int(NOW.timestamp()) - 3600}, "id-token-refused", "unknown person"),
    ],
)
async def test_a_refused_id_token_is_a_failed_log_in_in_the_access_log(
    sessions, claims, code, actor
):
    client, state = await log_in(sessions, FakeProvider(**claims))
    await client.get("/console/oidc/callback", params={"state": state, "code": "c1"})
    await client.aclose()
    assert await failed_log_ins(sessions) == [(actor, "-", refused(code))]


async def test_a_nonce_mismatch_an_outage_and_a_provider_or_code_refusal_are_each_recorded(
    sessions,
):
    provider = FakeProvider()
    client, state = await log_in(sessions, provider)
    provider.nonce = "the nonce of someone else's log-in"
    await client.get("/console/oidc/callback", params={"state": state, "code": "c1"})
    provider.down = True
    client, state = await log_in(sessions, provider)
    await client.get("/console/oidc/callback", params={"state": state, "code": "c2"})
    client, state = await log_in(sessions, provider)
    await client.get("/console/oidc/callback", params={"state": state, "error": "access_denied"})
    provider.down, provider.refuse_code = False, True  # a used or expired code
    client, state = await log_in(sessions, provider)
    await client.get("/console/oidc/callback", params={"state": state, "code": "c3"})
    await client.aclose()
    assert await failed_log_ins(sessions) == [
        ("unknown person", "-", refused("nonce-mismatch")),
        ("unknown person", "-", refused("provider-unavailable")),
        ("unknown person", "-", refused("provider-error")),
        ("unknown person", "-", refused("code-refused")),
    ]


async def test_a_forged_or_stale_callback_is_recorded_at_most_once_a_minute_per_address(
    sessions,
):
    provider = FakeProvider()
    client, state = await log_in(sessions, provider)
    for forged in ("x", "y", "z"):
        await client.get("/console/oidc/callback", params={"state": forged, "code": "c1"})
    app = client._transport.app  # the ASGI app under test
    await client.aclose()
    assert await failed_log_ins(sessions) == [("unknown person", "-", refused("bad-state"))]
    assert provider.exchanged == []
    # a minute on, the next one is written, and says how many were left out
    app.state.console_failed_logins.monotonic = lambda: 10**9
    client, _ = await log_in(sessions, provider, app=app)
    await client.get("/console/oidc/callback", params={"state": "w", "code": "c1"})
    await client.aclose()
    (_, last) = await failed_log_ins(sessions)
    assert last[2] == refused("bad-state") + " (2 more forgeable refusals not recorded)"
    async with sessions() as s:
        assert (await verify_chain(s)).first_bad_seq is None
    for _, _, reason in await failed_log_ins(sessions):  # no code, no state
        assert "c1" not in reason and state not in reason
