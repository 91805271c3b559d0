"""Console operators: their roles and password hashes.

New hashes are **argon2id** (``argon2-cffi``, its RFC 9106 low-memory profile: 64 MiB, 3
passes), written as the standard PHC string ``$argon2id$v=19$m=…,t=…,p=…$salt$hash``. Hashes
made before (``scrypt$N$r$p$salt$digest``) are still verified, so configured accounts keep
working; ``hash-password`` prints argon2id only.

An account is ``name``, ``role`` and ``password_hash`` in the router's settings
(``ROUTER_CONSOLE_USERS`` as JSON). The sandbox ships two well-known accounts. Password
accounts are for the sandbox only: outside it settings refuse any, and people log in through
the region's identity provider (services.router.ops.console.oidc_login); everything after
log-in only needs a name and a role.

A hash costs about 64 MiB and tens of milliseconds of CPU. On the event loop, 40 log-ins at
once stalled every request of the router for seconds (an admission confirmation took 6.9 s
instead of 0.4 s), so the router checks and makes hashes with :func:`verify_off_loop` and
:func:`hash_off_loop`: in worker threads (argon2-cffi releases the GIL), at most
:data:`HASHING_THREADS` at a time, the rest queued, at a lower CPU priority than the event
loop (:data:`HASHING_NICENESS`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret
from pydantic import BaseModel, ConfigDict, Field

from services.messaging import sandbox_secrets

_N, _R, _P = 2**14, 8, 1  # scrypt: verified for older hashes, never made any more
_ARGON2 = PasswordHasher()  # RFC 9106 low-memory profile (argon2-cffi's default)

HASHING_THREADS = 2
"""Hashes at once per process: a flood of log-ins queues instead of taking every core."""
HASHING_NICENESS = 10
"""How much lower the hashing threads run than the event loop. Each argon2 hash runs its
four lanes (p=4) in threads of its own, which inherit this; at the same priority two hashes
took 8 runnable threads against the event loop's one on a 2-core machine, and an admission
confirmation during 40 log-ins took 331 ms instead of 88 ms (flood test, loaded machine)."""


def _lower_priority() -> None:
    """Runs first in each hashing thread: Linux schedules threads on their own, and
    ``setpriority`` with a thread id lowers that thread (and those it starts) only."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the loop's priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


_HASHING = ThreadPoolExecutor(
    max_workers=HASHING_THREADS, thread_name_prefix="argon2", initializer=_lower_priority
)


class Role(enum.StrEnum):
    VIEWER = "viewer"  # metadata: states, times, pseudonyms, incidents, statistics
    OPERATOR = "operator"  # also: replay, acknowledge and resolve, open patient data
    ADMIN = "admin"

    def may(self, needed: Role) -> bool:
        order = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
        return order.index(self) >= order.index(needed)


class ConsoleUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    role: Role
    password_hash: str = Field(pattern=r"^(\$argon2id\$|scrypt\$)", repr=False)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """An argon2id hash with a random salt (a fixed ``salt`` only for the sandbox accounts,
    so settings can recognise them everywhere)."""
    if salt is None:
        return _ARGON2.hash(password)
    return hash_secret(
        password.encode(),
        salt,
        time_cost=_ARGON2.time_cost,
        memory_cost=_ARGON2.memory_cost,
        parallelism=_ARGON2.parallelism,
        hash_len=_ARGON2.hash_len,
        type=Type.ID,
    ).decode()


def scrypt_hash(password: str, *, salt: bytes | None = None) -> str:
    """The older scheme, kept to check accounts configured before argon2 (and in tests)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("$argon2id$"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


async def verify_off_loop(password: str, stored: str) -> bool:
    """:func:`verify_password` in a hashing thread, so the event loop keeps serving."""
    return await asyncio.get_running_loop().run_in_executor(
        _HASHING, verify_password, password, stored
    )


async def hash_off_loop(password: str) -> str:
    """:func:`hash_password` (random salt) in a hashing thread."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


# Fixed salts so the sandbox hashes are the same everywhere and settings can recognise them.
# Written out, not computed: two argon2id hashes at import cost 0.65 s of CPU in every process
# that imports this (each router start, each test worker); tests/unit/test_console_accounts.py
# checks they are what hash_password gives for the sandbox passwords and salts.
SANDBOX_PASSWORDS = sandbox_secrets.CONSOLE_PASSWORDS
SANDBOX_SALTS = {"ops": b"carebridge-sandbox-ops", "viewer": b"carebridge-sandbox-viewer"}
SANDBOX_USERS = (
    ConsoleUser(
        name="ops",
        role=Role.OPERATOR,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$Y2FyZWJyaWRnZS1zYW5kYm94LW9wcw"  # noqa: S106 (published sandbox account)
        "$pOCbAG4XllGxJeZXW5ExcsHCfsVZJfD7W3BdkPidhEc",
    ),
    ConsoleUser(
        name="viewer",
        role=Role.VIEWER,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$Y2FyZWJyaWRnZS1zYW5kYm94LXZpZXdlcg"  # noqa: S106 (published sandbox account)
        "$JySDf1B5RQIJHsjNASXPD+m2yzuW1/UexDHTo0laePw",
    ),
)


def authenticate(users: list[ConsoleUser], name: str, password: str) -> ConsoleUser | None:
    """The account, if the password is right. Always runs one hash, so a wrong name takes as
    long as a wrong password."""
    found = next((u for u in users if hmac.compare_digest(u.name, name)), None)
    stored = found.password_hash if found else SANDBOX_USERS[0].password_hash
    ok = verify_password(password, stored)
    return found if ok and found is not None else None
