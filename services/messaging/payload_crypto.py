"""Payloads encrypted at rest: AES-256-GCM with a keyring (key id → 256-bit key).

One key is *current* and seals every new payload; older keys stay in the ring so what they
sealed can still be read until ``rotate-payload-keys`` has re-sealed it. A sealed payload is
one ASCII string::

    enc:v1:<key id>:<base64(12-byte nonce + ciphertext + 16-byte tag)>

with the message id as associated data, so a ciphertext copied onto another message's row
does not open. A value without the ``enc:`` prefix is a plaintext row written before
encryption, and is handed back as it is.

Exceptions::

    PayloadCryptoError (ValueError)
     ├── KeyringError        the configured keyring is malformed (refused at start-up)
     ├── UnknownKey          sealed under a key id the ring does not hold
     └── UndecryptablePayload  wrong key, wrong associated data, or changed ciphertext

Pure: no settings, no clock (the nonce is random, from ``os.urandom`` via ``cryptography``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
_NONCE = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")

SANDBOX_PAYLOAD_KEYS = base64.b64encode(
    json.dumps(
        {"current": "sandbox-1", "keys": {"sandbox-1": base64.b64encode(b"\x5a" * 32).decode()}}
    ).encode()
).decode()
"""The sandbox keyring setting; refused outside the sandbox like every sandbox secret."""


class PayloadCryptoError(ValueError):
    pass


class KeyringError(PayloadCryptoError):
    pass


class UnknownKey(PayloadCryptoError):
    pass


class UndecryptablePayload(PayloadCryptoError):
    pass


@dataclass(frozen=True)
class Keyring:
    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyringError(f"the current key {self.current!r} is not in the keyring")
        for key_id, key in self.keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyringError(f"key id {key_id!r}: 1-32 of A-Z a-z 0-9 _ . -")
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} is {len(key)} bytes; 32 required (AES-256)")

    def __repr__(self) -> str:  # never the keys
        return f"Keyring(current={self.current!r}, ids={sorted(self.keys)!r})"

    @classmethod
    def from_setting(cls, encoded: str) -> Keyring:
        """From base64 of ``{"current": id, "keys": {id: base64 of 32 bytes, …}}``."""
        try:
            doc = json.loads(base64.b64decode(encoded, validate=True))
            keys = {str(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()}
            return cls(current=str(doc["current"]), keys=keys)
        except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, KeyringError):
                raise
            raise KeyringError("payload keyring: base64 of a JSON {current, keys}") from None

    def seal(self, plaintext: str, *, message_id: str) -> str:
        """The payload sealed under the current key, bound to ``message_id``."""
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self.keys[self.current]).encrypt(
            nonce, plaintext.encode("utf-8"), message_id.encode("utf-8")
        )
        return f"{PREFIX}{self.current}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, stored: str, *, message_id: str) -> str:
        """The plaintext of a sealed value (any key in the ring), or a legacy plaintext
        value as it is. Raises UnknownKey or UndecryptablePayload, never returns garbage."""
        if not is_sealed(stored):
            return stored
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        key = self.keys.get(key_id)
        if key is None:
            raise UnknownKey(f"payload sealed under key {key_id!r}, which is not configured")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], message_id.encode("utf-8"))
        except (binascii.Error, InvalidTag, ValueError):
            raise UndecryptablePayload(
                f"payload of message {message_id} does not open under key {key_id!r}"
            ) from None
        return plain.decode("utf-8")

    def needs_resealing(self, stored: str) -> bool:
        """Plaintext, or sealed under a key other than the current one."""
        return not stored.startswith(f"{PREFIX}{self.current}:")


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def key_id_of(stored: str) -> str | None:
    """The id of the key a sealed value names (None for plaintext): safe to log."""
    if not is_sealed(stored):
        return None
    key_id = stored[len(PREFIX) :].partition(":")[0]
    return key_id if _KEY_ID.match(key_id) else "?"


def new_key() -> str:
    """A fresh random 256-bit key, base64, for the keyring setting."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def encode_keyring(current: str, keys: Mapping[str, str]) -> str:
    """The keyring setting's value from base64 keys (what ``new-payload-key`` prints)."""
    encoded = base64.b64encode(json.dumps({"current": current, "keys": dict(keys)}).encode())
    Keyring.from_setting(encoded.decode())  # refuse a malformed ring now, not at start-up
    return encoded.decode()
