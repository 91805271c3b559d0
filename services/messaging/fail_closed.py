"""Fail closed: what a service refuses to start with.

The environment is production unless the sandbox is chosen explicitly
(``<PREFIX>ENVIRONMENT=sandbox``). Outside the sandbox a service refuses a published secret
(:mod:`services.messaging.sandbox_secrets`) in any secret setting, a key hash of one, a key
shorter than :data:`MIN_KEY_BYTES`, a plain-HTTP URL it would call, a PLAINTEXT Kafka channel
(each checked here or in ``ServiceSettings``) and payload rows left unsealed in its database
(:mod:`services.messaging.sealing`). The sandbox itself listens on loopback only.

Every refusal names the setting as the operator sets it, the environment variable
(``ROUTER_PSEUDONYM_KEY``), never its value. The checks are pure: they take the settings'
values keyed by those names and return the refusals, one line each, so a start-up names all
of them at once.

Exceptions::

    StartupRefused (ValueError)   the refusals, one per line (pydantic wraps it at start-up)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from services.messaging.sandbox_secrets import PUBLISHED, PUBLISHED_HASHES

MIN_KEY_BYTES = 32
"""A key, token or secret the broker checks with (an HMAC, a session signature, a bearer
token) is at least 256 bits: 32 bytes of its UTF-8 text."""

LOOPBACK_NAMES = frozenset({"localhost"})


class StartupRefused(ValueError):
    """A service refuses to start; the message names every setting at fault."""

    def __init__(self, service: str, refusals: list[str]) -> None:
        self.refusals = refusals
        lines = "\n".join(f"  - {refusal}" for refusal in refusals)
        super().__init__(f"{service} refuses to start:\n{lines}")


def env_name(prefix: str, field: str) -> str:
    """The environment variable of a settings field: ``ROUTER_`` + ``ops_token``."""
    return f"{prefix}{field}".upper()


def published_secrets(secrets: Mapping[str, str | None]) -> list[str]:
    """Settings that hold a published (sandbox) secret; ``secrets``: name → value."""
    return [
        f"{name}: holds a published sandbox secret; set a secret of this deployment's own"
        for name, value in secrets.items()
        if value is not None and value in PUBLISHED
    ]


def published_hashes(hashes: Mapping[str, Iterable[str]]) -> list[str]:
    """Key-hash settings that hold the hash of a published key; ``hashes``: name → held."""
    return [
        f"{name}: holds the hash of a published sandbox key; hash a key of this deployment's"
        for name, held in hashes.items()
        if PUBLISHED_HASHES.intersection(held)
    ]


def short_keys(keys: Mapping[str, str | None]) -> list[str]:
    """Keys shorter than :data:`MIN_KEY_BYTES`; ``keys``: name → value (None: not set)."""
    refusals = []
    for name, value in keys.items():
        size = len(value.encode()) if value is not None else MIN_KEY_BYTES
        if size < MIN_KEY_BYTES:
            refusals.append(f"{name}: {size} bytes; at least {MIN_KEY_BYTES} required")
    return refusals


def plain_http(urls: Mapping[str, str | None]) -> list[str]:
    """URLs the service would call without TLS; ``urls``: name → URL (None: not set)."""
    return [
        f"{name}: plain http is refused outside the sandbox; use an https:// URL"
        for name, url in urls.items()
        if url is not None and not url.strip().lower().startswith("https://")
    ]


def is_loopback(host: str) -> bool:
    """Whether an HTTP server bound to ``host`` is reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that resolves to who knows what


def loopback_only(name: str, host: str) -> list[str]:
    """The sandbox's rule for a bind address (setting ``name``)."""
    if is_loopback(host):
        return []
    return [
        f"{name}: the sandbox listens on loopback only (127.0.0.1, ::1 or localhost); "
        "a service reachable from other machines runs outside the sandbox, on its own secrets"
    ]
