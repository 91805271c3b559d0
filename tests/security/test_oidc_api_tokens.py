"""The ops API takes a person's access token from a real OpenID Connect provider (panva's
oidc-provider, run by sandbox/oidc.py) over real HTTP: the person in the access log is the
token's name and HSA-id, whatever the request body says; a forged token, an ID token and a
token without a carebridge role are refused. API keys keep working for clients."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sandbox.oidc import (
    SANDBOX_PEOPLE,
    RunningProvider,
    Tokens,
    access_token,
    authorization_code,
    running,
)
from services.router.ops.app import create_app
from services.router.ops.console.accounts import Role
from services.router.ops.oidc.claims import ClaimRules, person
from services.router.ops.oidc.pkce import new_attempt
from services.router.ops.oidc.provider import GrantRefused, IdentityProvider
from services.router.ops.oidc.recheck import ProviderRecheck, Verdict
from services.router.ops.oidc.tokens import BadClaims, Expected
from services.router.settings import SANDBOX_OPS_TOKEN, RouterSettings
from tests.support.oidc_keys import SigningKey
from tests.support.servers import serving

pytestmark = [pytest.mark.security, pytest.mark.oidc]

CALLBACK = "http://127.0.0.1:1/console/oidc/callback"  # read back from a redirect, never called
SEARCH = "/api/v1/messages/search/personnummer"


@pytest.fixture(scope="module")
def idp() -> Iterator[RunningProvider]:
    with running([CALLBACK]) as found:
        yield found


@pytest.fixture(scope="module")
def tokens(idp: RunningProvider) -> dict[str, Tokens]:
    """One log-in per person, through the provider's own form."""
    return {
        login: access_token(idp, login, person.password, redirect_uri=CALLBACK)
        for login, person in SANDBOX_PEOPLE.items()
    }


@pytest.fixture
async def router(
    idp: RunningProvider, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    settings = RouterSettings(
        oidc_issuer=idp.issuer,
        oidc_client_id=idp.client_id,
        oidc_redirect_url=CALLBACK,
        oidc_api_audience=idp.audience,
    )
    async with serving(create_app(settings, sessions=sessions), None) as port:
        yield f"http://127.0.0.1:{port}"


async def call(
    url: str, token: str, method: str, path: str, *, body: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.request(
            method, path, headers={"authorization": f"Bearer {token}"}, json=body
        )


def search(operator: str = "Someone Else") -> dict[str, str]:
    return {
        "personnummer": "191212121212",
        "reason": "samordning inför hemgång",
        "operator": operator,
    }


async def test_a_persons_token_acts_and_the_access_log_names_them_from_the_token(router, tokens):
    olle = SANDBOX_PEOPLE["olle"]
    found = await call(router, tokens["olle"].access_token, "POST", SEARCH, body=search())
    assert found.status_code == 200, found.text
    log = await call(router, tokens["vera"].access_token, "GET", "/api/v1/access-log")
    assert log.status_code == 200, log.text
    entries = log.json()["items"]
    assert [(e["actor"], e["role"]) for e in entries] == [
        (f"{olle.name} ({olle.hsa_id})", "operator")
    ]
    assert "Someone Else" not in log.text  # the body's name is never the actor


async def test_roles_come_from_the_tokens_claims(router, tokens):
    viewer = await call(router, tokens["vera"].access_token, "POST", SEARCH, body=search())
    assert viewer.status_code == 403
    norole = await call(router, tokens["nils"].access_token, "GET", "/api/v1/messages")
    assert norole.status_code == 403
    admin = await call(router, tokens["anna"].access_token, "GET", "/api/v1/subscriptions")
    assert admin.status_code == 200, admin.text


async def test_forged_and_misused_tokens_are_refused(router, tokens):
    genuine = tokens["anna"].access_token
    head, body, _ = genuine.split(".")

    # the same header (kid) and claims, signed by a key of the forger's own
    def part(text: str) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        )
        return loaded

    forger = SigningKey("unused", "RS256", SigningKey.rsa().private)
    forged = forger.sign(part(body), kid=part(head)["kid"], typ="at+jwt")
    spliced = f"{head}.{body}.{tokens['vera'].access_token.split('.')[2]}"
    refused = {
        "forged": forged,
        "another token's signature": spliced,
        "the ID token (audience: the console)": tokens["anna"].id_token,
        "garbage with two dots": "a.b.c",
    }
    for what, token in refused.items():
        answer = await call(router, token, "GET", "/api/v1/messages")
        assert answer.status_code == 401, what
        assert answer.headers["www-authenticate"] == "Bearer"
    assert (await call(router, genuine, "GET", "/api/v1/messages")).status_code == 200


async def test_api_keys_still_work_and_are_logged_as_the_client(router):
    found = await call(router, SANDBOX_OPS_TOKEN, "POST", SEARCH, body=search("Åsa"))
    assert found.status_code == 200, found.text
    log = await call(router, SANDBOX_OPS_TOKEN, "GET", "/api/v1/access-log")
    assert [e["actor"] for e in log.json()["items"]] == ["API client ops"]


# the console's side of the flow (services.router.ops.oidc.provider) against the real provider


@pytest.mark.parametrize("secret", [None, "a-confidential-client-secret-0123456789"])
async def test_the_consoles_code_exchange_and_id_token_check_work_with_the_provider(secret):
    attempt = new_attempt("/console/", now=0)
    with running([CALLBACK], client_secret=secret) as idp:
        rp = IdentityProvider(idp.issuer)
        code = authorization_code(
            idp,
            "olle",
            SANDBOX_PEOPLE["olle"].password,
            redirect_uri=CALLBACK,
            challenge=attempt.challenge,
            nonce=attempt.nonce,
            scope=RouterSettings().oidc_scopes,  # what the console asks for
        )
        answer = await rp.exchange(
            code,
            verifier=attempt.verifier,
            redirect_uri=CALLBACK,
            client_id=idp.client_id,
            client_secret=secret,
        )
        expected = Expected(issuer=idp.issuer, audience=idp.client_id, nonce=attempt.nonce)
        claims = await rp.check(answer.id_token, expected, now=datetime.now(UTC))
        assert person(claims, ClaimRules()).actor() == "Olle Operatör (SE2321000131-E000000000002)"
        with pytest.raises(BadClaims):  # another log-in's nonce
            await rp.check(
                answer.id_token,
                Expected(issuer=idp.issuer, audience=idp.client_id, nonce="other"),
                now=datetime.now(UTC),
            )
        # a console session checked again: the refresh token buys a fresh ID token, checked
        assert answer.refresh_token is not None
        recheck = ProviderRecheck(
            rp, issuer=idp.issuer, client_id=idp.client_id, client_secret=secret, rules=ClaimRules()
        )
        again = await recheck.recheck(
            answer.refresh_token,
            hsa_id="SE2321000131-E000000000002",
            role=Role.OPERATOR,
            now=datetime.now(UTC),
        )
        assert again.verdict is Verdict.KEEP and again.refresh_token
        demoted = await recheck.recheck(
            again.refresh_token,
            hsa_id="SE2321000131-E000000000002",
            role=Role.ADMIN,  # as if the session had another role than the provider gives
            now=datetime.now(UTC),
        )
        assert demoted.reason == "role changed to operator at the identity provider"
        if again.refresh_token != answer.refresh_token:  # rotated: the old one is spent
            spent = await recheck.recheck(
                answer.refresh_token,
                hsa_id=None,
                role=Role.OPERATOR,
                now=datetime.now(UTC),
            )
            assert spent.verdict is Verdict.REVOKE and "invalid_grant" in spent.reason


async def test_the_provider_refuses_a_code_without_its_pkce_verifier(idp):
    attempt = new_attempt("/console/", now=0)
    code = authorization_code(
        idp,
        "olle",
        SANDBOX_PEOPLE["olle"].password,
        redirect_uri=CALLBACK,
        challenge=attempt.challenge,
        nonce=attempt.nonce,
    )
    rp = IdentityProvider(idp.issuer)
    with pytest.raises(GrantRefused, match="invalid_grant"):
        await rp.exchange(
            code,
            verifier=new_attempt("/", now=0).verifier,  # a stolen code, another verifier
            redirect_uri=CALLBACK,
            client_id=idp.client_id,
            client_secret=None,
        )
