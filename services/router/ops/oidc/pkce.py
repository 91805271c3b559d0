"""One log-in through the identity provider (authorization code with PKCE), before the
provider answers. Pure: randomness and the time are given by the caller.

:func:`new_attempt` makes the ``state`` (ties the callback to this browser's request), the
``nonce`` (ties the ID token to it) and the PKCE ``verifier`` (only its S256 challenge goes to
the provider; the code is worth nothing without the verifier). The attempt is kept in a
short-lived cookie on the browser that started it, sealed with AES-GCM under a key derived
from the console secret (:func:`seal`): the browser can neither read the verifier nor change
anything, and an attempt is refused after :data:`ATTEMPT_TTL_S`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ATTEMPT_COOKIE = "carebridge_oidc"
ATTEMPT_TTL_S = 600.0


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    state: str
    nonce: str
    verifier: str  # 43 characters of base64url (RFC 7636 allows 43-128)
    next_path: str
    started_at: float  # unix seconds

    @property
    def challenge(self) -> str:
        """The S256 code challenge (RFC 7636 §4.2)."""
        return challenge_of(self.verifier)


def challenge_of(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def new_attempt(
    next_path: str, *, now: float, token: Callable[[int], str] = secrets.token_urlsafe
) -> LoginAttempt:
    return LoginAttempt(token(24), token(24), token(32), next_path, now)


def authorization_url(
    endpoint: str, *, client_id: str, redirect_uri: str, scopes: str, attempt: LoginAttempt
) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scopes,
        "state": attempt.state,
        "nonce": attempt.nonce,
        "code_challenge": attempt.challenge,
        "code_challenge_method": "S256",
    }
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"carebridge console oidc attempt\x00" + secret.encode()).digest()


def seal(attempt: LoginAttempt, *, secret: str, nonce: bytes | None = None) -> str:
    iv = nonce or secrets.token_bytes(12)
    body = json.dumps(asdict(attempt), separators=(",", ":")).encode()
    return _b64(iv + AESGCM(_key(secret)).encrypt(iv, body, ATTEMPT_COOKIE.encode()))


def unseal(value: str | None, *, secret: str, now: float) -> LoginAttempt | None:
    """The attempt, or None if absent, altered, sealed under another key or too old."""
    if not value or len(value) > 2000:
        return None
    try:
        raw = _unb64(value)
        body = AESGCM(_key(secret)).decrypt(raw[:12], raw[12:], ATTEMPT_COOKIE.encode())
        attempt = LoginAttempt(**json.loads(body))
    except (ValueError, TypeError, InvalidTag):
        return None
    if not 0 <= now - attempt.started_at <= ATTEMPT_TTL_S:
        return None
    return attempt
