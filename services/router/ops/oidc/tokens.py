"""A JSON Web Token from the identity provider, checked against its keys (JWKS). Pure: the
keys and the time are given; nothing is fetched and no clock is read.

What a token must have to be taken: a JWS compact form, an algorithm on the allowlist
(asymmetric only: never ``none``, never an HMAC algorithm that would take the provider's
*public* key as a shared secret), a key id the provider publishes, a key of the algorithm's
own type, a valid signature, the expected issuer and audience, and ``exp`` in the future,
``iat`` not in the future and ``nbf`` (if any) passed, each within ``leeway_s``.

Refusals, one class per reason (a caller decides on the class, never the message)::

    TokenRefused
     ├── MalformedToken       not a JWS compact token, or an unreadable header
     ├── ForbiddenAlgorithm   ``alg`` not on the allowlist
     ├── UnknownKey           no key with the token's ``kid`` (the caller may refresh once)
     ├── BadSignature         the signature does not verify with the provider's key
     └── BadClaims            issuer, audience, times, or a required claim missing
          └── NonceMismatch   an ID token's nonce is not the log-in attempt's
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from jwt.exceptions import InvalidSignatureError, PyJWKError, PyJWTError

# asymmetric only; the key's type must match (RSA for RS*/PS*, EC for ES*)
ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256")
_KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}


class TokenRefused(Exception):
    """The token is not taken; the subclass says why."""


class MalformedToken(TokenRefused):
    pass


class ForbiddenAlgorithm(TokenRefused):
    pass


class UnknownKey(TokenRefused):
    pass


class BadSignature(TokenRefused):
    pass


class BadClaims(TokenRefused):
    pass


class NonceMismatch(BadClaims):
    """An ID token for another log-in (a replayed or injected code)."""


@dataclass(frozen=True)
class KeySet:
    """The provider's signing keys by key id (from its JWKS document)."""

    keys: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> KeySet:
        """Signing keys only (``use`` absent or ``sig``), each with a ``kid``."""
        found: dict[str, Mapping[str, Any]] = {}
        for key in document.get("keys", []):
            if not isinstance(key, Mapping) or not isinstance(key.get("kid"), str):
                continue
            if key.get("use", "sig") != "sig" or key.get("kty") not in ("RSA", "EC"):
                continue
            found[key["kid"]] = dict(key)
        return cls(found)


@dataclass(frozen=True)
class Expected:
    """What the token must say about where it comes from and whom it is for."""

    issuer: str
    audience: str
    leeway_s: float = 30.0
    nonce: str | None = None  # an ID token's, bound to one log-in attempt
    required: tuple[str, ...] = ("iss", "aud", "exp", "iat", "sub")


def header(token: str) -> tuple[str, str]:
    """The token's algorithm and key id, read before anything is trusted."""
    if token.count(".") != 2:
        raise MalformedToken("not a JWS compact token")
    try:
        found = jwt.get_unverified_header(token)
    except PyJWTError:
        raise MalformedToken("the header cannot be read") from None
    alg, kid = found.get("alg"), found.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise ForbiddenAlgorithm(f"algorithm {alg!r} is not allowed")
    if not isinstance(kid, str):
        raise UnknownKey("the token names no key")
    return alg, kid


def check(token: str, keys: KeySet, expected: Expected, *, now: datetime) -> dict[str, Any]:
    """The token's claims, once every check above has passed; else a :class:`TokenRefused`."""
    alg, kid = header(token)
    jwk = keys.keys.get(kid)
    if jwk is None:
        raise UnknownKey("no provider key has the token's key id")
    if jwk.get("kty") != _KEY_TYPES[alg] or jwk.get("alg", alg) != alg:
        raise ForbiddenAlgorithm("the token's algorithm does not match its key")
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=alg)
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=expected.audience,
            issuer=expected.issuer,
            # times are checked below against the given clock, not the machine's
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": list(expected.required),
            },
        )
    except InvalidSignatureError:
        raise BadSignature("the signature does not verify") from None
    except PyJWKError:
        raise ForbiddenAlgorithm("the provider's key cannot be used") from None
    except PyJWTError as exc:
        raise BadClaims(type(exc).__name__) from None
    _check_times(claims, now.timestamp(), expected.leeway_s)
    if expected.nonce is not None and claims.get("nonce") != expected.nonce:
        raise NonceMismatch("the nonce is not this log-in's")
    return claims


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    def number(name: str) -> float | None:
        value = claims.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadClaims(f"{name} is not a number")
        return float(value)

    exp, iat, nbf = number("exp"), number("iat"), number("nbf")
    if exp is not None and exp <= now - leeway:
        raise BadClaims("expired")
    if iat is not None and iat > now + leeway:
        raise BadClaims("issued in the future")
    if nbf is not None and nbf > now + leeway:
        raise BadClaims("not valid yet")
