"""Source systems' bearer keys: made here, stored only as hashes, and told apart at intake.

A key is 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256 is the right hash:
nothing to brute-force, no need for a slow password hash. The broker keeps only the hex
digest (settings such as ``ADAPTER_TAKECARE_INTAKE_KEY_HASHES``, a JSON list); each system
may have **two** active keys at a time, so a new key can be rolled out before the old one is
withdrawn. A presented key is compared with every stored hash in constant time, and the hash
it matches names the system that sent it.

Make a key (printed once; store the hash in the settings, give the key to the system)::

    python -m services.messaging.keys new
    python -m services.messaging.keys hash < key.txt   # the hash of a key you already have
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.messaging.envelope import System

MAX_ACTIVE_KEYS = 2  # the current key and the next one, during a rotation
_HASH = re.compile(r"[0-9a-f]{64}")


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key: what settings hold."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh high-entropy key (256 bits)."""
    return secrets.token_urlsafe(32)


def check_hashes(hashes: Sequence[str]) -> list[str]:
    """Normalised hashes of one system; raise ValueError unless 1–2 hex SHA-256 digests."""
    found = [h.strip().lower() for h in hashes]
    if not 1 <= len(found) <= MAX_ACTIVE_KEYS:
        raise ValueError(f"a system has 1 to {MAX_ACTIVE_KEYS} active key hashes")
    if not all(_HASH.fullmatch(h) for h in found):
        raise ValueError("a key hash is the hex SHA-256 of the key (64 hex digits)")
    return found


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True)
class SystemKeys:
    """Which system each active key hash belongs to."""

    hashes: Mapping[System, Sequence[str]]

    def identify(self, authorization: str | None) -> System | None:
        """The system whose key the ``Authorization: Bearer`` header carries, else None.

        Every stored hash is compared (``hmac.compare_digest``), so the time taken does not
        say which system, or whether any, was close."""
        token = bearer_token(authorization)
        if token is None:
            return None
        presented = hash_key(token).encode()
        found: System | None = None
        for system, hashes in self.hashes.items():
            for stored in hashes:
                if hmac.compare_digest(presented, stored.encode()):
                    found = system
        return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.messaging.keys", description="Source-system bearer keys"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("new", help="make a key: prints the key once, and its hash")
    commands.add_parser("hash", help="the hash of a key read from standard input")
    args = parser.parse_args(argv)
    if args.command == "new":
        key = new_key()
        print(f"key:  {key}")
        print(f"hash: {hash_key(key)}")
        print("Give the key to the system once; put only the hash in the settings.")
    else:
        print(hash_key(sys.stdin.readline().strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
