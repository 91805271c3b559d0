"""Who an operator is: the console's authentication behind a small interface, and the
first-run admin account.

Everything after log-in needs only an :class:`Identity` (a name, a :class:`Role` and, for a
person the identity provider vouched for, their HSA-id), so the password check is one
:class:`Authenticator` among others: log-in through the region's identity provider
(services.router.ops.console.oidc_login) resolves its ID token to an Identity and signs the
operator in the same way.

**Passwords are for the sandbox only.** Outside it nobody logs in with a password (the
settings refuse ``ROUTER_CONSOLE_USERS`` there, the log-in form is not shown) and people log
in through the identity provider (``ROUTER_OIDC_ISSUER``). Without one, outside the sandbox,
the console has no log-in at all: it fails closed, and the API still takes its API keys.

:class:`PasswordAuthenticator` checks, in this order, the accounts configured in
``ROUTER_CONSOLE_USERS`` and the accounts stored in the ``console_account`` table (the
first-run admin). Both hold argon2id hashes only. The hash runs in a worker thread
(:func:`~services.router.ops.console.accounts.verify_off_loop`), never on the event loop.
The same two sources answer :meth:`PasswordAuthenticator.role_of`, which the session store
asks on every use of a password session: a changed role or a removed account ends it.

**First run** (:func:`ensure_first_admin`): where password log-in is on (the sandbox), with no
configured account (``ROUTER_CONSOLE_USERS=[]``) and no stored one, the router creates one
``admin`` with a random password and writes the credentials **once to standard output**,
never to the log: the JSON log stream is standard error (services.messaging.logs) and may be
shipped to a log store, whereas stdout is what an operator watches at the first start. A
replica that loses the race to create it prints nothing; no later start prints or creates
anything again.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TextIO

from sqlalchemy import Column, String, Table, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import UtcDateTime, metadata
from services.router.ops.console.accounts import (
    SANDBOX_USERS,
    ConsoleUser,
    Role,
    hash_off_loop,
    verify_off_loop,
)

log = logging.getLogger(__name__)

console_account = Table(
    "console_account",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("origin", String(20), nullable=False),  # "first-run"; later e.g. "oidc"
    Column("created_at", UtcDateTime, nullable=False),
)

FIRST_ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    role: Role
    hsa_id: str | None = None  # from the identity provider's token; None for a password log-in

    def actor(self) -> str:
        """Who the console names in the access log and the audit: for a person the
        identity provider vouched for, the name and HSA-id from their token."""
        return self.name if self.hsa_id is None else f"{self.name} ({self.hsa_id})"


class Authenticator(Protocol):
    """Resolves presented credentials to an operator, or None."""

    async def authenticate(self, name: str, password: str) -> Identity | None: ...


class PasswordAuthenticator:
    """Configured accounts first, then stored ones. Always runs one hash, so an unknown
    name takes as long as a wrong password."""

    def __init__(
        self,
        configured: Sequence[ConsoleUser],
        sessions: async_sessionmaker[AsyncSession] | None,
    ) -> None:
        self._configured = list(configured)
        self._sessions = sessions

    async def authenticate(self, name: str, password: str) -> Identity | None:
        found = next((u for u in self._configured if hmac.compare_digest(u.name, name)), None)
        stored: tuple[str, Role] | None = None
        if found is not None:
            stored = (found.password_hash, found.role)
        elif self._sessions is not None:
            async with self._sessions() as session:
                row = (
                    await session.execute(
                        select(console_account.c.password_hash, console_account.c.role).where(
                            console_account.c.name == name
                        )
                    )
                ).first()
            if row is not None:
                stored = (row.password_hash, Role(row.role))
        # a decoy hash for an unknown name: the same work either way
        ok = await verify_off_loop(
            password, stored[0] if stored else SANDBOX_USERS[0].password_hash
        )
        return Identity(name, stored[1]) if ok and stored is not None else None

    async def role_of(self, name: str) -> Role | None:
        """The account's role now (configured first, then stored), or None: it is gone."""
        found = next((u for u in self._configured if u.name == name), None)
        if found is not None:
            return found.role
        if self._sessions is None:
            return None
        async with self._sessions() as session:
            role = await session.scalar(
                select(console_account.c.role).where(console_account.c.name == name)
            )
        return Role(role) if role is not None else None


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    name: str
    password: str


async def ensure_first_admin(
    sessions: async_sessionmaker[AsyncSession],
    *,
    configured: Sequence[ConsoleUser],
    password_login: bool,
    now: datetime,
    out: TextIO,
    new_password: Callable[[], str] = lambda: secrets.token_urlsafe(18),
) -> FirstAdmin | None:
    """Create the first admin when nobody could log in otherwise, and show its password
    once on ``out`` (standard output). None when there was nothing to do, and always where
    password log-in is off (outside the sandbox: people log in through the identity provider)."""
    if not password_login or configured:
        return None
    async with sessions() as session:
        if await session.scalar(select(func.count()).select_from(console_account)):
            return None
    admin = FirstAdmin(FIRST_ADMIN, new_password())
    password_hash = await hash_off_loop(admin.password)
    try:
        async with sessions.begin() as session:
            await session.execute(
                console_account.insert().values(
                    name=admin.name,
                    role=Role.ADMIN.value,
                    password_hash=password_hash,
                    origin="first-run",
                    created_at=now,
                )
            )
    except IntegrityError:  # another replica created it first and showed it
        return None
    out.write(
        "carebridge: first run, no console account was configured.\n"
        f"  console admin account: {admin.name}\n"
        f"  password (shown once): {admin.password}\n"
        "  Log in at /console/login; set ROUTER_CONSOLE_USERS for named accounts.\n"
    )
    out.flush()
    log.warning("first-run console admin created", extra={"account": admin.name})
    return admin
