"""Signed Kafka records: nobody on the Kafka network can forge a receipt or a command.

Every internal record (an inbound message, a delivery command, a result, a receipt) carries
an Ed25519 signature of the service that produced it, and the consumer verifies it before
the record can change anything. The signature covers the topic, the key, every other header
and the exact value bytes, so a record cannot be moved to another topic or have a header
changed. Each service holds its own private key; consumers hold the public keys of the
services they read from. During a rotation a service signs with its new key while the
consumers already trust both (``keys`` holds two entries), so no record is refused.

The header is ``carebridge-signature: v1;<signer>;<key id>;<base64 signature>``.

Exceptions (the consumer quarantines the record and raises an incident; the class says why)::

    RecordSignatureError
     ├── UnsignedRecord        no signature header
     ├── MalformedSignature    the header is not ``v1;signer;key id;signature``
     ├── UnknownSigningKey     the signer or its key id is not trusted here
     ├── BadRecordSignature    the signature does not match: a changed or forged record
     └── WrongSigner           a trusted service signed a record it may not produce
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE_HEADER = "carebridge-signature"
_VERSION = "v1"


class RecordSignatureError(Exception):
    """A record's origin cannot be trusted."""


class UnsignedRecord(RecordSignatureError):
    """The record has no signature header."""


class MalformedSignature(RecordSignatureError):
    """The signature header cannot be read."""


class UnknownSigningKey(RecordSignatureError):
    """The signer or key id is not among the trusted keys."""


class BadRecordSignature(RecordSignatureError):
    """The signature does not match the record."""


class WrongSigner(RecordSignatureError):
    """A trusted service signed a record on a topic it may not write."""


def signed_bytes(topic: str, key: str | None, headers: Mapping[str, str], value: bytes) -> bytes:
    """The canonical bytes a signature covers: unambiguous (JSON of the parts, then the
    value), independent of header order, and never including the signature itself."""
    parts = {
        "topic": topic,
        "key": key,
        "headers": sorted((k, v) for k, v in headers.items() if k != SIGNATURE_HEADER),
    }
    return json.dumps(parts, separators=(",", ":")).encode() + b"\n" + value


@dataclass(frozen=True)
class RecordSigner:
    """This service's signing key (one current key; older ones are only the consumers' to
    keep trusting until every record signed with them is read)."""

    service: str
    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def sign(self, topic: str, key: str | None, headers: Mapping[str, str], value: bytes) -> str:
        signature = self.private_key.sign(signed_bytes(topic, key, headers, value))
        encoded = base64.b64encode(signature).decode()
        return f"{_VERSION};{self.service};{self.key_id};{encoded}"

    def public_key_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class RecordVerifier:
    """The public keys this service trusts (service → key id → key) and which services may
    write each topic it reads (topic → signers; a topic not listed is refused)."""

    trusted: Mapping[str, Mapping[str, Ed25519PublicKey]]
    writers: Mapping[str, frozenset[str]]

    def verify(self, topic: str, key: str | None, headers: Mapping[str, str], value: bytes) -> str:
        """Return the signer, or raise a :class:`RecordSignatureError`."""
        header = headers.get(SIGNATURE_HEADER)
        if header is None:
            raise UnsignedRecord("the record is not signed")
        parts = header.split(";")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise MalformedSignature("the signature header is not v1;signer;key id;signature")
        _, signer, key_id, encoded = parts
        public = self.trusted.get(signer, {}).get(key_id)
        if public is None:
            raise UnknownSigningKey(f"no trusted key {key_id[:40]!r} of signer {signer[:40]!r}")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedSignature("the signature is not base64") from exc
        try:
            public.verify(signature, signed_bytes(topic, key, headers, value))
        except InvalidSignature as exc:
            raise BadRecordSignature(f"the signature of {signer} does not match") from exc
        if signer not in self.writers.get(topic, frozenset()):
            raise WrongSigner(f"{signer} may not write {topic}")
        return signer


def new_signing_key() -> str:
    """Base64 of a fresh Ed25519 private key (32 bytes), for settings."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return base64.b64encode(raw).decode()


def load_private(encoded: str) -> Ed25519PrivateKey:
    raw = base64.b64decode(encoded, validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 signing key is 32 bytes (base64)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public(encoded: str) -> Ed25519PublicKey:
    raw = base64.b64decode(encoded, validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes (base64)")
    return Ed25519PublicKey.from_public_bytes(raw)


# --- settings --------------------------------------------------------------------------------
# The sandbox's keys are derived from published seeds: anyone can sign with them, so a
# service refuses them outside the sandbox (services/messaging/settings.py).


def sandbox_signing_key(service: str) -> str:
    """``<key id>:<base64 private key>`` of a service in the sandbox."""
    import hashlib

    seed = hashlib.sha256(f"carebridge-sandbox-record-signing:{service}".encode()).digest()
    return f"sandbox-1:{base64.b64encode(seed).decode()}"


def sandbox_trusted_keys(services: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Signer → key id → base64 public key, for the sandbox's services."""
    return {s: dict([public_entry(sandbox_signing_key(s))]) for s in services}


def parse_signing_key(setting: str) -> tuple[str, Ed25519PrivateKey]:
    """``<key id>:<base64 of 32 bytes>`` → (key id, key)."""
    key_id, sep, encoded = setting.partition(":")
    if not sep or not key_id or len(key_id) > 40:
        raise ValueError("record_signing_key is '<key id>:<base64 Ed25519 private key>'")
    return key_id, load_private(encoded)


def public_entry(setting: str) -> tuple[str, str]:
    """(key id, base64 public key) of a ``<key id>:<private key>`` setting."""
    key_id, private = parse_signing_key(setting)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return key_id, base64.b64encode(raw).decode()
