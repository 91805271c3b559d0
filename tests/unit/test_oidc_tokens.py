"""The identity provider's tokens, checked without I/O: with keys made here, a genuine token
is taken and each kind of forgery or misuse is refused, each with its own reason."""

from datetime import UTC, datetime

import pytest

from services.router.ops.console.accounts import Role
from services.router.ops.oidc import claims as person_claims_rules
from services.router.ops.oidc import pkce
from services.router.ops.oidc.claims import ClaimRules, NoRole, NotAPerson, person, role_of
from services.router.ops.oidc.tokens import (
    BadClaims,
    BadSignature,
    Expected,
    ForbiddenAlgorithm,
    KeySet,
    MalformedToken,
    UnknownKey,
    check,
)
from tests.support.oidc_keys import (
    AUDIENCE,
    HSA_ID,
    ISSUER,
    SigningKey,
    hmac_with_public_key,
    key_set,
    person_claims,
    unsigned,
)

pytestmark = pytest.mark.security

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
KEY = SigningKey.rsa("k1")
EC_KEY = SigningKey.ec("e1")
KEYS = key_set(KEY, EC_KEY)
EXPECTED = Expected(issuer=ISSUER, audience=AUDIENCE)


def test_a_genuine_token_is_taken_rsa_and_ec():
    for key in (KEY, EC_KEY):
        found = check(key.sign(person_claims(NOW)), KEYS, EXPECTED, now=NOW)
        assert (found["name"], found["hsa_id"]) == ("Anna Admin", HSA_ID)


def test_an_audience_list_that_holds_ours_is_taken():
    token = KEY.sign(person_claims(NOW, aud=["other", AUDIENCE]))
    assert check(token, KEYS, EXPECTED, now=NOW)["sub"] == "anna"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"iss": "https://evil.example"}, BadClaims),
        ({"aud": "https://another-api.example"}, BadClaims),
        ({"aud": ["another", "yet another"]}, BadClaims),
        ({"exp": int(NOW.timestamp()) - 31}, BadClaims),  # beyond the 30 s leeway
        ({"iat": int(NOW.timestamp()) + 3600}, BadClaims),
        ({"nbf": int(NOW.timestamp()) + 3600}, BadClaims),
        ({"exp": "tomorrow"}, BadClaims),
    ],
)
def test_wrong_claims_are_refused(change, refusal):
    with pytest.raises(refusal):
        check(KEY.sign(person_claims(NOW, **change)), KEYS, EXPECTED, now=NOW)


def test_a_token_within_the_leeway_is_taken_and_one_beyond_it_is_not():
    token = KEY.sign(person_claims(NOW, exp=int(NOW.timestamp()) - 10))
    assert check(token, KEYS, EXPECTED, now=NOW)
    strict = Expected(issuer=ISSUER, audience=AUDIENCE, leeway_s=0)
    with pytest.raises(BadClaims):
        check(token, KEYS, strict, now=NOW)


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub"])
def test_a_token_without_a_required_claim_is_refused(missing):
    claims = person_claims(NOW)
    del claims[missing]
    with pytest.raises(BadClaims):
        check(KEY.sign(claims), KEYS, EXPECTED, now=NOW)


def test_alg_none_is_refused():
    with pytest.raises(ForbiddenAlgorithm):
        check(unsigned(person_claims(NOW), "k1"), KEYS, EXPECTED, now=NOW)


def test_hmac_signed_with_the_public_key_is_refused():
    with pytest.raises(ForbiddenAlgorithm):
        check(hmac_with_public_key(person_claims(NOW), KEY), KEYS, EXPECTED, now=NOW)


def test_an_algorithm_that_does_not_match_the_key_is_refused():
    # an EC signature presented under the RSA key's id
    forged = SigningKey("k1", "ES256", EC_KEY.private).sign(person_claims(NOW))
    with pytest.raises(ForbiddenAlgorithm):
        check(forged, KEYS, EXPECTED, now=NOW)


def test_a_token_signed_by_another_key_under_a_known_key_id_is_refused():
    forger = SigningKey.rsa("k1")  # same kid, a key of the attacker's own
    with pytest.raises(BadSignature):
        check(forger.sign(person_claims(NOW)), KEYS, EXPECTED, now=NOW)


def test_an_unknown_key_id_is_refused():
    with pytest.raises(UnknownKey):
        check(SigningKey.rsa("k9").sign(person_claims(NOW)), KEYS, EXPECTED, now=NOW)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.***"])
def test_what_is_not_a_token_is_refused(token):
    with pytest.raises((MalformedToken, ForbiddenAlgorithm)):
        check(token, KEYS, EXPECTED, now=NOW)


def test_an_id_token_must_carry_this_log_ins_nonce():
    expected = Expected(issuer=ISSUER, audience=AUDIENCE, nonce="n-1")
    assert check(KEY.sign(person_claims(NOW, nonce="n-1")), KEYS, expected, now=NOW)
    for other in ({"nonce": "n-2"}, {}):
        with pytest.raises(BadClaims):
            check(KEY.sign(person_claims(NOW, **other)), KEYS, expected, now=NOW)


def test_the_key_set_keeps_signing_keys_with_an_id_only():
    document = {
        "keys": [
            KEY.jwk(),
            {**SigningKey.rsa("enc").jwk(), "use": "enc"},
            {k: v for k, v in SigningKey.rsa("x").jwk().items() if k != "kid"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            "not a key",
        ]
    }
    assert set(KeySet.from_jwks(document).keys) == {"k1"}


# who the claims name, and their role


def test_the_highest_mapped_role_wins_and_unknown_groups_are_ignored():
    rules = ClaimRules()
    assert role_of({"roles": ["carebridge-viewer", "carebridge-operator", "x"]}, rules) == (
        Role.OPERATOR
    )
    assert role_of({"roles": "carebridge-admin"}, rules) == Role.ADMIN
    custom = ClaimRules(role_claim="groups", roles={"CN=Drift,OU=IT": Role.OPERATOR})
    assert role_of({"groups": ["CN=Drift,OU=IT"]}, custom) == Role.OPERATOR


@pytest.mark.parametrize(
    "claims", [{}, {"roles": []}, {"roles": ["some-other-group"]}, {"roles": {"admin": True}}]
)
def test_no_mapped_role_is_refused(claims):
    with pytest.raises(NoRole):
        role_of(claims, ClaimRules())


def test_a_person_needs_a_name_and_an_hsa_id():
    found = person(person_claims(NOW), ClaimRules())
    assert found.actor() == f"Anna Admin ({HSA_ID})" and found.role == Role.ADMIN
    for change in ({"name": ""}, {"name": None}, {"hsa_id": "197001011234"}, {"hsa_id": None}):
        with pytest.raises(NotAPerson):
            person({**person_claims(NOW), **change}, ClaimRules())


def test_without_a_name_claim_the_given_and_family_names_make_one():
    claims = {**person_claims(NOW), "given_name": "Anna", "family_name": "Andersson"}
    del claims["name"]
    assert person(claims, ClaimRules()).name == "Anna Andersson"
    del claims["given_name"], claims["family_name"]
    with pytest.raises(NotAPerson):
        person(claims, ClaimRules())


def test_the_actor_fits_the_access_log():
    long_name = "Anna " * 40
    found = person(person_claims(NOW, name=long_name), ClaimRules())
    assert len(found.name) == person_claims_rules.NAME_MAX
    assert len(f"{found.actor()} (console)") <= 100


# one log-in attempt


def test_the_s256_challenge_is_rfc_7636s():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636, appendix B
    assert pkce.challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_each_attempt_is_new_and_the_url_carries_only_the_challenge():
    one = pkce.new_attempt("/console/", now=0)
    two = pkce.new_attempt("/console/", now=0)
    assert len({one.state, one.nonce, one.verifier, two.state, two.nonce, two.verifier}) == 6
    assert len(one.verifier) >= 43
    url = pkce.authorization_url(
        "https://idp/auth", client_id="c", redirect_uri="https://r/cb", scopes="openid", attempt=one
    )
    assert one.verifier not in url and one.challenge in url and "code_challenge_method=S256" in url
    assert f"state={one.state}" in url and f"nonce={one.nonce}" in url


def test_a_sealed_attempt_opens_only_with_its_key_unaltered_and_in_time():
    attempt = pkce.new_attempt("/console/messages", now=1000)
    sealed = pkce.seal(attempt, secret="s" * 32)
    assert attempt.verifier not in sealed
    assert pkce.unseal(sealed, secret="s" * 32, now=1001) == attempt
    assert pkce.unseal(sealed, secret="t" * 32, now=1001) is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert pkce.unseal(flipped, secret="s" * 32, now=1001) is None
    assert pkce.unseal(sealed, secret="s" * 32, now=1000 + pkce.ATTEMPT_TTL_S + 1) is None
    assert pkce.unseal(None, secret="s" * 32, now=1001) is None
    assert pkce.unseal("garbage", secret="s" * 32, now=1001) is None
