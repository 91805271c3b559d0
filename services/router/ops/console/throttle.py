"""Log-in throttling: wrong passwords per account name and per client address.

Failed log-ins are rows in ``console_login_attempt``, so every router replica sharing the
database counts the same ones. After :attr:`ThrottleRules.per_account` failures for one
name (or :attr:`ThrottleRules.per_address` from one address) within the window, the next
attempt waits :attr:`ThrottleRules.first_delay` after the latest failure, and each further
failure doubles that wait (up to :attr:`ThrottleRules.max_delay`). A refused attempt runs no
password hash and is not itself a failure, so hammering does not extend the wait; the first
refusal after each failure is noted (outcome ``refused``), so the access log gets one entry
per lock, not one per request. A successful log-in clears the name's failures.

The name counted is the one typed, whether or not such an account exists, so a refusal
says nothing about which accounts exist.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, ColumnElement, Index, String, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.db import BigId, UtcDateTime, metadata

console_login_attempt = Table(
    "console_login_attempt",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("account", String(60), nullable=False),  # the name typed (it may not exist)
    Column("address", String(64), nullable=False),
    Column("outcome", String(10), nullable=False),  # an Outcome value
    Index("ix_console_login_attempt_account", "account", "at"),
    Index("ix_console_login_attempt_address", "address", "at"),
)


class Outcome(enum.StrEnum):
    FAILED = "failed"
    REFUSED = "refused"  # the first refusal after a failure, not every one


@dataclass(frozen=True, slots=True)
class ThrottleRules:
    per_account: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=15)

    def delay(self, failures: int, limit: int) -> timedelta:
        """The wait after the latest of ``failures`` (none below ``limit``)."""
        if failures < limit:
            return timedelta(0)
        return min(self.max_delay, self.first_delay * (1 << min(failures - limit, 20)))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Not now: come back in ``retry_after_s``. ``first``: the first refusal since the
    latest failure (the one worth an access-log entry)."""

    retry_after_s: int
    first: bool


class LoginThrottle:
    def __init__(
        self, db: async_sessionmaker[AsyncSession], rules: ThrottleRules | None = None
    ) -> None:
        self._db = db
        self.rules = rules or ThrottleRules()

    async def check(self, *, account: str, address: str, now: datetime) -> Refusal | None:
        """None if this attempt may go ahead, else how long to wait."""
        account = account[:60]
        keys: list[tuple[ColumnElement[bool], int]] = [
            (console_login_attempt.c.account == account, self.rules.per_account),
            (console_login_attempt.c.address == address[:64], self.rules.per_address),
        ]
        since = now - self.rules.window
        refusal: tuple[datetime, datetime, ColumnElement[bool]] | None = None  # until, latest
        async with self._db() as db:
            for key, limit in keys:
                count, latest = (
                    await db.execute(
                        select(func.count(), func.max(console_login_attempt.c.at)).where(
                            key,
                            console_login_attempt.c.outcome == Outcome.FAILED.value,
                            console_login_attempt.c.at > since,
                        )
                    )
                ).one()
                if latest is None:
                    continue
                until = latest + self.rules.delay(int(count), limit)
                if until > now and (refusal is None or until > refusal[0]):
                    refusal = (until, latest, key)
        if refusal is None:
            return None
        until, latest, key = refusal
        async with self._db.begin() as db:
            noted = await db.scalar(
                select(func.count()).where(
                    key,
                    console_login_attempt.c.outcome == Outcome.REFUSED.value,
                    console_login_attempt.c.at >= latest,
                )
            )
            if not noted:
                await self._note(db, account, address, Outcome.REFUSED, now)
        return Refusal(math.ceil((until - now).total_seconds()), first=not noted)

    async def failed(self, db: AsyncSession, *, account: str, address: str, now: datetime) -> None:
        """Count a wrong password (in the caller's transaction)."""
        await self._note(db, account, address, Outcome.FAILED, now)

    async def succeeded(self, db: AsyncSession, *, account: str) -> None:
        """Clear the name's failures (in the caller's transaction); the address keeps its
        count, so one good password does not reopen an address that guesses many names."""
        await db.execute(
            delete(console_login_attempt).where(console_login_attempt.c.account == account[:60])
        )

    async def prune(self, *, now: datetime) -> int:
        """Remove attempts older than the window: they no longer count."""
        async with self._db.begin() as db:
            done = await db.execute(
                delete(console_login_attempt).where(
                    console_login_attempt.c.at <= now - self.rules.window
                )
            )
        return int(done.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def _note(
        db: AsyncSession, account: str, address: str, outcome: Outcome, now: datetime
    ) -> None:
        await db.execute(
            console_login_attempt.insert().values(
                at=now, account=account[:60], address=address[:64], outcome=outcome.value
            )
        )
