"""A provider's refresh token kept in the console's session row, sealed: AES-256-GCM under a
key derived from ``ROUTER_CONSOLE_SECRET`` (as the log-in attempt of :mod:`.pkce`), bound to
the session (its id hash is the associated data), so a sealed token copied to another row,
or read from a backup without the secret, is worth nothing. Rotating the secret ends every
session anyway. Pure: nothing is read but the arguments.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
MAX_SEALED = 4000  # the column's width: a provider's refresh token is far shorter


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"carebridge console refresh token\x00" + secret.encode()).digest()


def seal_token(token: str, *, secret: str, session: str) -> str:
    iv = secrets.token_bytes(_NONCE)
    sealed = AESGCM(_key(secret)).encrypt(iv, token.encode(), session.encode())
    found = base64.urlsafe_b64encode(iv + sealed).decode()
    if len(found) > MAX_SEALED:
        raise ValueError("the refresh token is too long to keep")
    return found


def unseal_token(value: str | None, *, secret: str, session: str) -> str | None:
    """The token, or None if absent, altered, of another session or under another key."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value)
        plain = AESGCM(_key(secret)).decrypt(raw[:_NONCE], raw[_NONCE:], session.encode())
        return plain.decode()
    except (ValueError, InvalidTag):
        return None
