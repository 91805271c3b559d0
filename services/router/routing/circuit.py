"""A circuit breaker per destination, so an outage does not burn every message's attempts.

States::

    closed ──N failures in a row──▶ open ──probe time──▶ half_open ──probe ok──▶ closed
                                     ▲                        │
                                     └──────probe fails───────┘  (open again, longer)

While a destination's circuit is open nothing is dispatched to it: deliveries wait in
``pending`` with their attempts untouched. When the open period has passed, exactly one
delivery is dispatched as a probe; its outcome closes the circuit or opens it again, with the
open period doubled up to a cap. Any ok from the destination closes the circuit.

What counts as a failure: one of the destination as a whole (not reached, no answer, 429 or
5xx gateway statuses: ``transport``) always; an error status for one message (``response``)
once per patient in a run of failures. One patient's record that the receiver chokes on
therefore never trips the circuit for everyone, however often it is retried; N different
patients failing do. The patients of the current run are kept (``failing_patients``) so the
probe can be a delivery of another patient: the one that keeps failing would only open the
circuit again.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Integer, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import BigId, UtcDateTime, metadata, serialize

log = logging.getLogger(__name__)


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failure_threshold: int = 5  # transient failures in a row that open the circuit
    open_s: float = 5.0  # first open period; doubled after each failed probe
    max_open_s: float = 30.0
    # closed this long, the next opening counts from itself: before, it continues the last
    settle_s: float = 60.0

    def settled(self, closed_at: datetime | None, now: datetime) -> bool:
        return closed_at is None or now - closed_at >= timedelta(seconds=self.settle_s)

    def open_for(self, trips: int) -> timedelta:
        return timedelta(seconds=min(self.max_open_s, self.open_s * 2 ** max(0, trips - 1)))


destination_circuit = Table(
    "destination_circuit",
    metadata,
    Column("destination", String(40), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("trips", Integer, nullable=False),  # opened this many times since last closed
    Column("probe_at", UtcDateTime, nullable=True),
    Column("probe_delivery_id", BigId, nullable=True),
    Column("changed_at", UtcDateTime, nullable=False),
    # first opened since the circuit last stayed closed for ``settle_s`` (a destination that
    # answers one probe and fails again is down all along, not newly down each time)
    Column("opened_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    # pseudonyms of the patients whose deliveries failed in the current run (space-separated)
    Column("failing_patients", Text, nullable=True),
)


@dataclass(frozen=True, slots=True)
class Gate:
    """What dispatch may send now: destinations that are shut, and those that may send one
    probe, with the patients a probe should not be (those whose deliveries keep failing)."""

    shut: frozenset[str]
    probing: frozenset[str]
    avoid: dict[str, frozenset[str]] = field(default_factory=dict)


MAX_KEPT_PATIENTS = 64  # of a run of failures: enough to tell one patient from many


def _patients(text: str | None) -> frozenset[str]:
    return frozenset((text or "").split())


async def gate(session: AsyncSession, now: datetime) -> Gate:
    rows = (
        await session.execute(
            select(destination_circuit).where(
                destination_circuit.c.state != CircuitState.CLOSED.value
            )
        )
    ).all()
    shut, probing, avoid = set(), set(), {}
    for row in rows:
        if row.state == CircuitState.OPEN.value and row.probe_at <= now:
            probing.add(row.destination)
            avoid[row.destination] = _patients(row.failing_patients)
        else:
            shut.add(row.destination)
    return Gate(frozenset(shut), frozenset(probing), avoid)


async def probe_sent(
    session: AsyncSession, destination: str, delivery_id: int, now: datetime
) -> bool:
    """Claim the probe; False if another router claimed it first."""
    claimed = await session.execute(
        update(destination_circuit)
        .where(
            destination_circuit.c.destination == destination,
            destination_circuit.c.state == CircuitState.OPEN.value,
        )
        .values(state=CircuitState.HALF_OPEN.value, probe_delivery_id=delivery_id, changed_at=now)
    )
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        return False
    log.info("circuit half-open: probing", extra={"destination": destination})
    return True


async def record_success(session: AsyncSession, destination: str, now: datetime) -> None:
    seen = (
        await session.execute(
            select(destination_circuit.c.state, destination_circuit.c.failures).where(
                destination_circuit.c.destination == destination
            )
        )
    ).first()
    if seen is None or (seen.state == CircuitState.CLOSED.value and not seen.failures):
        return  # the common case, read without a lock: closed and nothing to reset
    row = await _row(session, destination, now)
    if row.state != CircuitState.CLOSED.value or row.failures:
        await session.execute(
            update(destination_circuit)
            .where(destination_circuit.c.destination == destination)
            .values(
                state=CircuitState.CLOSED.value,
                failures=0,
                trips=0,
                probe_at=None,
                probe_delivery_id=None,
                changed_at=now,
                closed_at=now if row.state != CircuitState.CLOSED.value else row.closed_at,
                failing_patients=None,
            )
        )
        if row.state != CircuitState.CLOSED.value:
            log.warning(
                "circuit closed: destination answers again", extra={"destination": destination}
            )


async def record_failure(
    session: AsyncSession,
    destination: str,
    policy: CircuitPolicy,
    now: datetime,
    *,
    patient: str | None = None,
    transport: bool = True,
) -> bool:
    """A failure of one attempt: ``transport`` (the destination as a whole) or an error
    answer to ``patient``'s message. True when it counted against the circuit."""
    row = await _row(session, destination, now)
    failing = _patients(row.failing_patients)
    counts = transport or patient is None or patient not in failing
    if patient is not None and len(failing) < MAX_KEPT_PATIENTS:
        failing = failing | {patient}
    values: dict[str, object] = {"changed_at": now, "failing_patients": " ".join(sorted(failing))}
    if not counts:
        if row.state == CircuitState.HALF_OPEN.value:
            # the probe was the patient that keeps failing (no other was due): that says
            # nothing of the destination, so it is taken as up, not opened again
            values |= {"state": CircuitState.CLOSED.value, "probe_at": None, "trips": 0}
            values |= {"probe_delivery_id": None, "closed_at": now}
        await session.execute(
            update(destination_circuit)
            .where(destination_circuit.c.destination == destination)
            .values(**values)
        )
        return False
    failures = row.failures + 1
    opens = row.state == CircuitState.HALF_OPEN.value or (
        row.state == CircuitState.CLOSED.value and failures >= policy.failure_threshold
    )
    values["failures"] = failures
    if opens:
        trips = row.trips + 1
        values |= {
            "state": CircuitState.OPEN.value,
            "trips": trips,
            "probe_at": now + policy.open_for(trips),
            "probe_delivery_id": None,
            "opened_at": _down_since(row, policy, now),
        }
        log.warning(
            "circuit open: destination failing",
            extra={"destination": destination, "failures": failures, "trips": trips},
        )
    await session.execute(
        update(destination_circuit)
        .where(destination_circuit.c.destination == destination)
        .values(**values)
    )
    return True


def _down_since(row: Any, policy: CircuitPolicy, now: datetime) -> datetime:
    """When the destination went down, as of an opening now: the earlier opening when the
    circuit never settled closed since (it was still open, or closed only briefly)."""
    flapping = row.state != CircuitState.CLOSED.value or not policy.settled(row.closed_at, now)
    return row.opened_at if row.opened_at is not None and flapping else now


async def _row(session: AsyncSession, destination: str, now: datetime) -> Any:
    """The circuit row, created closed on first use, locked against other routers until the
    transaction ends (a failure counted by two replicas at once would be counted once)."""
    await serialize(session, f"circuit:{destination}")
    found = (
        await session.execute(
            select(destination_circuit).where(destination_circuit.c.destination == destination)
        )
    ).first()
    if found is not None:
        return found
    await session.execute(
        destination_circuit.insert().values(
            destination=destination,
            state=CircuitState.CLOSED.value,
            failures=0,
            trips=0,
            changed_at=now,
        )
    )
    return (
        await session.execute(
            select(destination_circuit).where(destination_circuit.c.destination == destination)
        )
    ).one()


async def open_longer_than(
    session: AsyncSession, now: datetime, limit: timedelta, policy: CircuitPolicy
) -> list[str]:
    """Destinations whose circuit has been open (or probing, or closed for less than
    ``policy.settle_s`` between two openings) for longer than ``limit``."""
    rows = await session.execute(
        select(
            destination_circuit.c.destination,
            destination_circuit.c.state,
            destination_circuit.c.closed_at,
        ).where(destination_circuit.c.opened_at <= now - limit)
    )
    return sorted(
        r.destination
        for r in rows.all()
        if r.state != CircuitState.CLOSED.value or not policy.settled(r.closed_at, now)
    )
