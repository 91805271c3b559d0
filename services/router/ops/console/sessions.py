"""Console sessions kept on the server, in the ``console_session`` table.

The cookie holds only a random opaque id (32 bytes, URL-safe). The table stores its
HMAC-SHA256 under ``ROUTER_CONSOLE_SECRET``, never the id itself: someone who reads the
table cannot present a session, and someone who can write to it cannot mint one without
the key. Rotating the key ends every session.

A session row holds who (account name, role), how it began (``origin``: ``password`` or
``oidc``), from where (the client address at log-in), when (created, last seen, absolute
expiry), its CSRF token (every form posts it back), and, once it ends early, when and why it
was revoked. A session is refused when:

- it was revoked: at log-out, or when a password account's role changed or the account is
  gone (checked on every use against the accounts the password log-in knows, so a removed
  user loses access on the next page, not hours later);
- it was idle longer than ``ROUTER_CONSOLE_IDLE_S`` (20 min by default), or
- it is older than ``ROUTER_CONSOLE_SESSION_S`` (8 h by default), however busy.

Sessions from an identity provider (OIDC) are checked again with the provider, at most every
:attr:`SessionRules.recheck_every` (``ROUTER_OIDC_SESSION_RECHECK_S``, 5 min by default), on
a console request that finds the check due: the provider's refresh token, kept in the row
sealed (:mod:`services.router.ops.oidc.sealed`, never in the cookie), buys a fresh ID token,
checked as at log-in (:mod:`services.router.ops.oidc.recheck`). The session is revoked when
the provider refuses (the person removed, the grant revoked), when the role or the person
changed, or when there is no refresh token to check with. When the provider does not
answer, the session stands until :attr:`SessionRules.recheck_grace` after its last good
check (``ROUTER_OIDC_SESSION_GRACE_S``, 10 min), tried again at most every
:data:`RETRY_EVERY`, and is then revoked: it fails closed. One request (of all replicas)
claims each check with a conditional update, so a refresh token is never spent twice.

``last_seen_at`` is written at most every :attr:`SessionRules.touch_every`, not
on every page view. Log-in, log-out and revocations go to the access log
(:func:`services.router.audit.access_log.record_security_event`). Rows that have expired or
were revoked are removed by :meth:`SessionStore.prune` (at each log-in).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Column, Index, String, Table, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import UtcDateTime, metadata
from services.router.audit.access_log import AccessKind, record_security_event
from services.router.ops.console.accounts import Role
from services.router.ops.console.identity import Identity
from services.router.ops.oidc.recheck import Recheck, SessionRechecker, Verdict
from services.router.ops.oidc.sealed import MAX_SEALED, seal_token, unseal_token

COOKIE = "carebridge_console"
RETRY_EVERY = timedelta(seconds=30)  # a provider that did not answer is asked again after

console_session = Table(
    "console_session",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # HMAC of the cookie's id, never the id
    Column("account", String(160), nullable=False),
    Column("role", String(20), nullable=False),
    Column("origin", String(20), nullable=False),  # an Origin value
    Column("hsa_id", String(64), nullable=True),  # an OIDC log-in's HSA-id, if it gave one
    Column("address", String(64), nullable=False),  # the client's address at log-in
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),  # absolute: created_at + session_s
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("revoked_reason", String(200), nullable=True),
    # an OIDC session's re-check with the provider: its refresh token (sealed), the last good
    # check, and when the next is due (or retried, while the provider does not answer)
    Column("refresh_sealed", String(MAX_SEALED), nullable=True),
    Column("checked_at", UtcDateTime, nullable=True),
    Column("recheck_after", UtcDateTime, nullable=True),
    Index("ix_console_session_account", "account"),
    Index("ix_console_session_expires_at", "expires_at"),
)


class Origin(enum.StrEnum):
    PASSWORD = "password"  # noqa: S105 (a kind of log-in, not a secret)
    OIDC = "oidc"


@dataclass(frozen=True, slots=True)
class SessionRules:
    absolute: timedelta = timedelta(hours=8)
    idle: timedelta = timedelta(minutes=20)
    # last_seen_at is written at most this often per session: a page view is a read
    touch_every: timedelta = timedelta(seconds=30)
    # an OIDC session is checked with the provider at most this often, and kept this long
    # past its last good check while the provider does not answer
    recheck_every: timedelta = timedelta(minutes=5)
    recheck_grace: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class OperatorSession:
    """The signed-in operator, as pages see them."""

    user: str
    role: Role
    csrf: str
    origin: Origin = Origin.PASSWORD
    id_hash: str = field(default="", repr=False)

    def may(self, needed: Role) -> bool:
        return self.role.may(needed)


@runtime_checkable
class AccountDirectory(Protocol):
    """Where a password account's current role is read (None: the account is gone)."""

    async def role_of(self, name: str) -> Role | None: ...


class SessionStore:
    """Starts, looks up, ends and prunes console sessions. One per router app; every
    replica sharing the database sees the same sessions."""

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        *,
        key: str,
        accounts: AccountDirectory,
        rules: SessionRules | None = None,
        rechecker: SessionRechecker | None = None,
    ) -> None:
        self._db = db
        self._secret = key
        self._key = key.encode()
        self._accounts = accounts
        self.rules = rules or SessionRules()
        # None: no identity provider to ask, so an OIDC session ends at its first check
        self.rechecker = rechecker

    def _hash(self, session_id: str) -> str:
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    async def start(
        self,
        identity: Identity,
        *,
        origin: Origin,
        address: str,
        now: datetime,
        hsa_id: str | None = None,
        refresh_token: str | None = None,
    ) -> str:
        """A new session for ``identity``, with its log-in written to the access log in the
        same transaction. Returns the cookie's value (shown once, stored only as a hash).
        ``refresh_token``: an OIDC log-in's, to check the session with the provider later."""
        session_id = secrets.token_urlsafe(32)
        id_hash = self._hash(session_id)
        oidc = origin is Origin.OIDC
        async with self._db.begin() as db:
            await db.execute(
                console_session.insert().values(
                    id_hash=id_hash,
                    # "Name (HSA-id)" for a person the identity provider vouched for
                    account=identity.actor()[:160],
                    role=identity.role.value,
                    origin=origin.value,
                    hsa_id=hsa_id or identity.hsa_id,
                    address=address[:64],
                    csrf=secrets.token_hex(16),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.rules.absolute,
                    refresh_sealed=(
                        seal_token(refresh_token, secret=self._secret, session=id_hash)
                        if oidc and refresh_token
                        else None
                    ),
                    checked_at=now if oidc else None,
                    recheck_after=now + self.rules.recheck_every if oidc else None,
                )
            )
            await record_security_event(
                db,
                actor=identity.actor(),
                role=identity.role.value,
                kind=AccessKind.LOGIN_OK,
                reason=f"{origin.value} log-in from {address}",
                now=now,
            )
        return session_id

    async def lookup(self, cookie: str | None, *, now: datetime) -> OperatorSession | None:
        """The live session the cookie names, or None (absent, unknown, revoked, idle too
        long, too old, or revoked now because its account's role changed or it is gone)."""
        if not cookie or len(cookie) > 200:
            return None
        id_hash = self._hash(cookie)
        async with self._db() as db:
            row = (
                await db.execute(
                    select(console_session).where(console_session.c.id_hash == id_hash)
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if now >= row.expires_at or now - row.last_seen_at >= self.rules.idle:
            return None
        found = OperatorSession(
            user=row.account,
            role=Role(row.role),
            csrf=row.csrf,
            origin=Origin(row.origin),
            id_hash=id_hash,
        )
        if found.origin is Origin.PASSWORD:
            current = await self._accounts.role_of(found.user)
            if current != found.role:
                why = "account removed" if current is None else f"role changed to {current.value}"
                await self.revoke(found, reason=why, now=now, kind=AccessKind.SESSION_REVOKED)
                return None
        elif (row.recheck_after is None or now >= row.recheck_after) and not (
            await self._recheck(found, row, now=now)
        ):
            return None
        if now - row.last_seen_at >= self.rules.touch_every:
            async with self._db.begin() as db:
                await db.execute(
                    update(console_session)
                    .where(console_session.c.id_hash == id_hash)
                    .values(last_seen_at=now)
                )
        return found

    async def _recheck(self, found: OperatorSession, row: Any, *, now: datetime) -> bool:
        """Check an OIDC session with the provider; False if it was revoked."""
        due = (
            console_session.c.recheck_after.is_(None)
            if row.recheck_after is None
            else console_session.c.recheck_after == row.recheck_after
        )
        async with self._db.begin() as db:  # claim it: the other requests go on meanwhile
            claimed = await db.execute(
                update(console_session)
                .where(console_session.c.id_hash == found.id_hash, due)
                .values(recheck_after=now + RETRY_EVERY)
            )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return True
        token = unseal_token(row.refresh_sealed, secret=self._secret, session=found.id_hash)
        if self.rechecker is None:
            outcome = Recheck(Verdict.REVOKE, "no identity provider to check the session with")
        elif token is None:
            outcome = Recheck(
                Verdict.REVOKE, "no refresh token to check with the identity provider"
            )
        else:
            outcome = await self.rechecker.recheck(
                token, hsa_id=row.hsa_id, role=found.role, now=now
            )
        fresh = outcome.refresh_token or token  # a provider may rotate it, or not
        if outcome.verdict is Verdict.KEEP and fresh is not None:
            async with self._db.begin() as db:
                await db.execute(
                    update(console_session)
                    .where(console_session.c.id_hash == found.id_hash)
                    .values(
                        checked_at=now,
                        recheck_after=now + self.rules.recheck_every,
                        refresh_sealed=seal_token(
                            fresh, secret=self._secret, session=found.id_hash
                        ),
                    )
                )
            return True
        reason = outcome.reason
        if outcome.verdict is Verdict.UNREACHABLE:
            last_good = row.checked_at or row.created_at
            if now - last_good < self.rules.recheck_every + self.rules.recheck_grace:
                return True  # asked again after RETRY_EVERY
            reason = "the identity provider did not answer within the grace"
        await self.revoke(found, reason=reason, now=now, kind=AccessKind.SESSION_REVOKED)
        return False

    async def revoke(
        self,
        operator: OperatorSession,
        *,
        reason: str,
        now: datetime,
        kind: AccessKind = AccessKind.LOGOUT,
    ) -> bool:
        """End the session now (log-out, or a revocation), recorded once in the access log
        even when two replicas race to revoke it. False if it had already ended."""
        async with self._db.begin() as db:
            done = await db.execute(
                update(console_session)
                .where(
                    console_session.c.id_hash == operator.id_hash,
                    console_session.c.revoked_at.is_(None),
                )
                .values(revoked_at=now, revoked_reason=reason[:200])
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            await record_security_event(
                db,
                actor=operator.user,
                role=operator.role.value,
                kind=kind,
                reason=reason,
                now=now,
            )
        return True

    async def prune(self, *, now: datetime) -> int:
        """Remove the sessions that can no longer be used (revoked, idle or past their
        expiry); their log-ins and log-outs stay in the access log. The count removed."""
        async with self._db.begin() as db:
            done = await db.execute(
                delete(console_session).where(
                    or_(
                        console_session.c.revoked_at.is_not(None),
                        console_session.c.expires_at <= now,
                        console_session.c.last_seen_at <= now - self.rules.idle,
                    )
                )
            )
        return int(done.rowcount)  # type: ignore[attr-defined]
