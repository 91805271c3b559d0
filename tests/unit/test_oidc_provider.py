"""The identity provider over HTTP (httpx.MockTransport): discovery that must name the
configured issuer, keys fetched once and again only for an unknown key id (at most once per
interval), and the code exchange as a public or a confidential client."""

from datetime import UTC, datetime

import httpx
import pytest

from services.router.ops.oidc.provider import GrantRefused, IdentityProvider, ProviderUnavailable
from services.router.ops.oidc.tokens import Expected, UnknownKey
from tests.support.oidc_keys import AUDIENCE, ISSUER, SigningKey, person_claims

pytestmark = pytest.mark.security

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
EXPECTED = Expected(issuer=ISSUER, audience=AUDIENCE)


class FakeIdp:
    """The provider's HTTP side: what it publishes, and every request it got."""

    def __init__(self, *keys: SigningKey, issuer: str = ISSUER) -> None:
        self.keys = list(keys)
        self.issuer = issuer
        self.seen: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{ISSUER}/auth",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if request.url.path.endswith("/jwks"):
            return httpx.Response(200, json={"keys": [k.jwk() for k in self.keys]})
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"id_token": "id.token.here", "access_token": "a"})
        return httpx.Response(404)

    def jwks_fetches(self) -> int:
        return sum(r.url.path.endswith("/jwks") for r in self.seen)


def provider(idp: FakeIdp, clock: list[float]) -> IdentityProvider:
    return IdentityProvider(
        ISSUER,
        transport=httpx.MockTransport(idp.handler),
        refresh_min_s=30,
        monotonic=lambda: clock[0],
    )


async def test_keys_are_fetched_once_and_again_when_the_provider_rotates():
    old, new = SigningKey.rsa("old"), SigningKey.rsa("new")
    idp, clock = FakeIdp(old), [0.0]
    rp = provider(idp, clock)
    for _ in range(3):
        assert (await rp.check(old.sign(person_claims(NOW)), EXPECTED, now=NOW))["sub"] == "anna"
    assert idp.jwks_fetches() == 1
    idp.keys = [new]  # rotated
    clock[0] = 31
    assert await rp.check(new.sign(person_claims(NOW)), EXPECTED, now=NOW)
    assert idp.jwks_fetches() == 2


async def test_unknown_key_ids_fetch_at_most_once_per_interval():
    idp, clock = FakeIdp(SigningKey.rsa("k1")), [0.0]
    rp = provider(idp, clock)
    await rp.keys("k1")
    for n in range(20):  # a stream of forged key ids
        with pytest.raises(UnknownKey):
            await rp.check(
                SigningKey.rsa(f"forged-{n}").sign(person_claims(NOW)), EXPECTED, now=NOW
            )
    assert idp.jwks_fetches() == 1
    clock[0] = 30
    with pytest.raises(UnknownKey):
        await rp.check(SigningKey.rsa("forged").sign(person_claims(NOW)), EXPECTED, now=NOW)
    assert idp.jwks_fetches() == 2


async def test_a_discovery_document_for_another_issuer_is_refused():
    rp = provider(FakeIdp(issuer="https://evil.example"), [0.0])
    with pytest.raises(ProviderUnavailable):
        await rp.discovery()


async def test_a_provider_that_does_not_answer_is_unavailable():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    rp = IdentityProvider(ISSUER, transport=httpx.MockTransport(down))
    with pytest.raises(ProviderUnavailable):
        await rp.discovery()


@pytest.mark.parametrize("secret", [None, "a-client-secret"])
async def test_the_code_exchange_sends_the_verifier_and_authenticates_as_configured(secret):
    idp = FakeIdp(SigningKey.rsa())
    rp = provider(idp, [0.0])
    answer = await rp.exchange(
        "the-code",
        verifier="v" * 43,
        redirect_uri="https://r/cb",
        client_id="c",
        client_secret=secret,
    )
    assert answer.id_token == "id.token.here"
    (sent,) = [r for r in idp.seen if r.url.path.endswith("/token")]
    form = dict(httpx.QueryParams(sent.content.decode()))
    assert form["code_verifier"] == "v" * 43 and form["grant_type"] == "authorization_code"
    if secret is None:
        assert form["client_id"] == "c" and "authorization" not in sent.headers
    else:
        assert "client_id" not in form and sent.headers["authorization"].startswith("Basic ")


async def test_a_refused_code_exchange_is_a_refused_grant_not_a_log_in():
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(400, json={"error": "invalid_grant"})
        return FakeIdp().handler(request)

    rp = IdentityProvider(ISSUER, transport=httpx.MockTransport(refuse))
    with pytest.raises(GrantRefused, match="invalid_grant"):
        await rp.exchange("c", verifier="v", redirect_uri="r", client_id="c", client_secret=None)
    with pytest.raises(GrantRefused, match="invalid_grant"):
        await rp.refresh("r", client_id="c", client_secret=None)


async def test_the_refresh_grant_sends_the_refresh_token_and_reads_the_new_one():
    idp = FakeIdp()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            seen.append(request)
            return httpx.Response(200, json={"id_token": "i.d.t", "refresh_token": "r2"})
        return idp.handler(request)

    rp = IdentityProvider(ISSUER, transport=httpx.MockTransport(answer))
    got = await rp.refresh("r1", client_id="console", client_secret=None)
    assert (got.id_token, got.access_token, got.refresh_token) == ("i.d.t", None, "r2")
    form = dict(pair.split("=") for pair in seen[0].content.decode().split("&"))
    assert form == {"grant_type": "refresh_token", "refresh_token": "r1", "client_id": "console"}


async def test_a_token_endpoint_that_fails_without_an_oauth_error_is_unavailable():
    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(503, text="down for maintenance")
        return FakeIdp().handler(request)

    rp = IdentityProvider(ISSUER, transport=httpx.MockTransport(broken))
    with pytest.raises(ProviderUnavailable):
        await rp.refresh("r", client_id="c", client_secret=None)
