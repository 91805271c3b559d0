"""Signing keys made in the test, and tokens signed with them, for the OIDC checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from services.router.ops.oidc.tokens import KeySet

ISSUER = "https://idp.region.example/oidc"
AUDIENCE = "https://carebridge.example/ops-api"
HSA_ID = "SE2321000131-E000000000001"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str = "k1") -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str = "e1") -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        kind = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        found: dict[str, Any] = kind.to_jwk(self.private.public_key(), as_dict=True)
        return {**found, "kid": self.kid, "use": "sig", "alg": self.alg}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **header}
        )

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


def key_set(*keys: SigningKey) -> KeySet:
    return KeySet.from_jwks({"keys": [k.jwk() for k in keys]})


def person_claims(now: datetime, **more: Any) -> dict[str, Any]:
    at = int(now.timestamp())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "anna",
        "iat": at,
        "exp": at + 600,
        "name": "Anna Admin",
        "hsa_id": HSA_ID,
        "roles": ["carebridge-admin"],
        **more,
    }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """``alg: none``: a token anyone can make."""
    head = _b64(json.dumps({"alg": "none", "kid": kid}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}."


def hmac_with_public_key(claims: dict[str, Any], key: SigningKey) -> str:
    """HS256 with the provider's *public* key as the secret: the classic confusion attack."""
    head = _b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(key.public_pem(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"
