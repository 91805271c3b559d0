"""One router replica at a time does the watchdog's work (PostgreSQL).

Replicas share the delivery log, and the watchdog's work (attempts that expired, deliveries
to send again, the scan for what became due, overdue confirmations, deadlines, incidents,
silence, gaps) is the same for all of them: each replica used to repeat it. The replica that
holds the lease does it; it renews the lease every tick, and when it dies the lease runs out
and the next replica to tick takes it over.

The lease's time is the database's (``now()``): the replicas' wall clocks may disagree or
jump (services.router.routing.clock_jumps). On SQLite one router owns the database, so it
always holds the lease."""

from __future__ import annotations

from sqlalchemy import Column, String, Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import UtcDateTime, metadata

LEASE = "watchdog"

watchdog_lease = Table(
    "watchdog_lease",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),  # UTC, the database's clock
)

# Taken when free or run out, renewed by its holder; no row back: another replica holds it.
_HOLD = text(
    """
    INSERT INTO watchdog_lease (name, holder, expires_at)
    VALUES (:name, :holder, (now() AT TIME ZONE 'UTC') + make_interval(secs => :ttl_s))
    ON CONFLICT (name) DO UPDATE
        SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
        WHERE watchdog_lease.holder = EXCLUDED.holder
           OR watchdog_lease.expires_at < (now() AT TIME ZONE 'UTC')
    RETURNING holder
    """
)


async def hold(session: AsyncSession, holder: str, ttl_s: float) -> bool:
    """Whether ``holder`` (a replica's name) holds the watchdog lease for the next
    ``ttl_s`` seconds: taken, renewed, or taken over from a holder that stopped renewing."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    found = await session.execute(_HOLD, {"name": LEASE, "holder": holder, "ttl_s": ttl_s})
    return found.first() is not None
