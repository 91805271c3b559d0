"""Pending read-backs: deliveries an adapter confirms by reading the record back from the
receiving journal's API, kept in the adapter's database so that a restart (kill -9 included)
loses none of them; and the per-destination settings of it (:class:`ConfirmationMode`,
:class:`ReadBackTerms`).

A row is written in the same transaction as the delivery's ``ok`` outcome
(:func:`schedule`), checked at ``next_check_at`` until ``deadline`` by
:mod:`services.messaging.read_back`, and removed when the record is found or a receipt for the
message arrives by any path (:func:`settle`, called by
:func:`services.messaging.receipts.accept_receipt`), or when the deadline passes unfound
(:func:`give_up`): the router's watchdog then raises the silent-drop alert and sends the
notice again, and that delivery schedules a new read-back.

How long a read-back has left (:func:`remaining`) is measured on the monotonic clock when the
row was scheduled on this boot: the deadline is the router's ``confirm-by``, a wall time, and a
step of the wall clock (NTP, ``date -s``) would otherwise end every pending read-back at its
next look (forward) or prolong it by the step (back), while the router moves its own
``confirm_by`` by the jump (:mod:`services.router.routing.clock_jumps`). Nothing is moved,
so two adapters sharing the table never count one jump twice.

The table holds no patient data: a message id, the destination, an API path and times.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.db import UtcDateTime, metadata
from services.messaging.journal_client import parse_instant


class ConfirmationMode(enum.StrEnum):
    """How a destination confirms that a delivered record is in its journal."""

    RECEIPT = "receipt"  # it pushes a receipt (kvittens) to the adapter
    READ_BACK = "read-back"  # the adapter reads the record back from its API
    BOTH = "both"  # whichever comes first; the other changes nothing

    @property
    def reads_back(self) -> bool:
        return self is not ConfirmationMode.RECEIPT


@dataclass(frozen=True)
class ReadBackTerms:
    """When one destination's records are read back: first ``first_check_s`` after the
    journal accepted the record, then every ``interval_s`` until the deadline the delivery
    command names (``confirm-by``), or ``window_s`` after acceptance if it names none."""

    first_check_s: float = 2.0
    interval_s: float = 30.0
    window_s: float = 900.0

    def deadline(self, confirm_by: str | None, now: datetime) -> datetime:
        """Until when to read back; never before the first check, so a delivery accepted
        after its deadline (a retry that got through late) is still looked for once."""
        named = parse_instant(confirm_by)
        until = named if named is not None else now + timedelta(seconds=self.window_s)
        return max(until, now + timedelta(seconds=self.first_check_s))


pending_read_back = Table(
    "pending_read_back",
    metadata,
    Column("destination", String(40), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("path", String(300), nullable=False),  # the POST path; read back at <path>/<key>
    Column("deadline", UtcDateTime, nullable=False),  # the delivery's confirmation deadline
    Column("next_check_at", UtcDateTime, nullable=False),
    Column("checks", Integer, nullable=False, server_default="0"),
    Column("last_result", String(100), nullable=True),  # "not found", "HTTP 503", …
    Column("traceparent", String(55), nullable=True),  # the delivery's hop, for the receipt
    Column("scheduled_at", UtcDateTime, nullable=False),
    # the monotonic clock at ``scheduled_at``, and its boot (services.messaging.clock):
    # the deadline's remaining time is measured on it
    Column("scheduled_monotonic", Float, nullable=True),
    Column("boot_id", String(64), nullable=True),
    PrimaryKeyConstraint("destination", "message_id"),
    Index("ix_pending_read_back_next_check_at", "next_check_at"),
)


@dataclass(frozen=True, slots=True)
class PendingReadBack:
    destination: str
    message_id: str
    path: str
    deadline: datetime
    next_check_at: datetime
    checks: int
    last_result: str | None
    traceparent: str | None
    scheduled_at: datetime | None = None
    scheduled_monotonic: float | None = None
    boot_id: str | None = None


def remaining(row: PendingReadBack, now: datetime, monotonic: float | None, boot: str) -> timedelta:
    """How long ``row`` is still read back: its deadline less the time since it was
    scheduled as the monotonic clock measured it, when it was scheduled on this boot
    (``boot``) and a ``monotonic`` reading is given; otherwise until its deadline by the
    wall clock (``now``). A step of the wall clock since scheduling changes the first not
    at all."""
    if (
        monotonic is not None
        and row.scheduled_monotonic is not None
        and row.scheduled_at is not None
        and row.boot_id == boot
    ):
        budget = row.deadline - row.scheduled_at
        return budget - timedelta(seconds=monotonic - row.scheduled_monotonic)
    return row.deadline - now


async def schedule(
    session: AsyncSession,
    *,
    destination: str,
    message_id: str,
    path: str,
    deadline: datetime,
    first_check_at: datetime,
    traceparent: str | None,
    now: datetime,
    monotonic: float | None = None,
    boot: str | None = None,
) -> None:
    """Read ``message_id`` back from ``destination`` from ``first_check_at`` until
    ``deadline``. A delivery sent again replaces what an earlier attempt scheduled.
    ``monotonic``: the monotonic clock read with ``now``, on boot ``boot``; given, the time
    left is measured on it (:func:`remaining`)."""
    values = dict(
        path=path,
        deadline=deadline,
        next_check_at=first_check_at,
        checks=0,
        last_result=None,
        traceparent=traceparent,
        scheduled_at=now,
        scheduled_monotonic=monotonic,
        boot_id=boot if monotonic is not None else None,
    )
    updated = await session.execute(
        update(pending_read_back)
        .where(
            pending_read_back.c.destination == destination,
            pending_read_back.c.message_id == message_id,
        )
        .values(**values)
    )
    if updated.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(
            pending_read_back.insert(),
            dict(destination=destination, message_id=message_id, **values),
        )


async def settle(session: AsyncSession, destination: str, message_id: str) -> None:
    """A receipt for the message came (pushed, or read back): nothing left to read back."""
    await session.execute(
        delete(pending_read_back).where(
            pending_read_back.c.destination == destination,
            pending_read_back.c.message_id == message_id,
        )
    )


async def due(
    session: AsyncSession,
    destinations: list[str],
    now: datetime,
    *,
    limit: int,
    horizon: timedelta | None = None,
) -> list[PendingReadBack]:
    """The read-backs of ``destinations`` due at ``now``, the longest waiting first. One
    planned further than ``horizon`` ahead (no schedule goes that far: it was planned before
    the wall clock went back) is due now too, so a step back never delays a check by its
    size (services.messaging.clock)."""
    when = pending_read_back.c.next_check_at <= now
    if horizon is not None:
        when = or_(when, pending_read_back.c.next_check_at > now + horizon)
    rows = await session.execute(
        select(pending_read_back)
        .where(pending_read_back.c.destination.in_(destinations), when)
        .order_by(pending_read_back.c.next_check_at)
        .limit(limit)
    )
    return [
        PendingReadBack(
            destination=row.destination,
            message_id=row.message_id,
            path=row.path,
            deadline=row.deadline,
            next_check_at=row.next_check_at,
            checks=row.checks,
            last_result=row.last_result,
            traceparent=row.traceparent,
            scheduled_at=row.scheduled_at,
            scheduled_monotonic=row.scheduled_monotonic,
            boot_id=row.boot_id,
        )
        for row in rows
    ]


async def next_due_at(session: AsyncSession, destinations: list[str]) -> datetime | None:
    """When the next read-back of ``destinations`` is due; None when none is pending."""
    found: datetime | None = await session.scalar(
        select(func.min(pending_read_back.c.next_check_at)).where(
            pending_read_back.c.destination.in_(destinations)
        )
    )
    return found


def _same(row: PendingReadBack) -> list[object]:
    """The row as it was read: a delivery sent again meanwhile scheduled a new read-back
    (another deadline), which a check of the old one must leave alone."""
    return [
        pending_read_back.c.destination == row.destination,
        pending_read_back.c.message_id == row.message_id,
        pending_read_back.c.deadline == row.deadline,
    ]


async def check_again(
    session: AsyncSession, row: PendingReadBack, *, at: datetime, result: str
) -> None:
    await session.execute(
        update(pending_read_back)
        .where(*_same(row))  # type: ignore[arg-type]
        .values(next_check_at=at, checks=row.checks + 1, last_result=result[:100])
    )


async def give_up(session: AsyncSession, row: PendingReadBack) -> bool:
    """The deadline passed unfound: stop (the router's watchdog takes it from here)."""
    gone = await session.execute(delete(pending_read_back).where(*_same(row)))  # type: ignore[arg-type]
    return bool(gone.rowcount)  # type: ignore[attr-defined]
