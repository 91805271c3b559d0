"""Wall-clock jumps, told apart from time passing, across every router process of a host.

The router keeps its timers in the database as wall times: an attempt's timeout, a
delivery's confirmation deadline, its next re-send and retry, a circuit's probe and a fallback
email's next try. A step of the wall clock (NTP correcting a clock that was hours off, an
operator's ``date -s``) would fire every one of them at once when it goes forward (the alert
storm of issue 17: timed-out attempts, an open circuit, false silent-drop alerts, urgent
emails to a home-care unit) and delay them all when it goes back.

So each tick compares the wall clock with this boot's *anchor*: the wall and monotonic
clocks as the last tick on this host read them (``clock_anchor``, one row per boot, so every
router process of the host, and a router restarted since, compares against the same
reading). A difference beyond the tolerance is a jump (:func:`services.messaging.clock.jumped`):
in the same transaction the timers above move by the jump, so each keeps the time it had
left, the jump is recorded (``clock_jump``: logged, on the dashboard) and new alerts are held
for one confirmation interval, in case something was missed. The anchor row is locked while
this happens, so two routers never move the timers twice for one jump.

A Kafka batch sets new timers on its own reading of the clock, so it checks too, before it
writes them, whenever its process saw the wall clock jump since its last reading (or has not
read it yet): otherwise the tick that found the jump later moved the batch's timers, already
on the new scale, a second time. A jump inside one batch's transaction can still leave that
batch's timers on the old scale (they then fire early, while new alerts are held).

What is *not* moved: times that record what happened (sent, confirmed, transitions), and the
legal and care-process deadlines (days to a SIP meeting, the discharge law's terms), which
count from the journals' own timestamps in calendar time.

Timestamps made by other processes before a jump reach the router after it, on the old scale
(an adapter's ``Bundle.timestamp``): :func:`on_our_scale` moves one past a forward jump it
unmistakably precedes, and never lets a stamp lie in the router's future.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.clock import Reading, boot_id, jumped
from services.messaging.db import UtcDateTime, metadata, serialize
from services.router.routing.circuit import destination_circuit
from services.router.routing.domain import UNFINISHED
from services.router.routing.tables import delivery, notification

log = logging.getLogger(__name__)

clock_anchor = Table(
    "clock_anchor",
    metadata,
    Column("boot_id", String(64), primary_key=True),
    Column("wall", UtcDateTime, nullable=False),
    Column("monotonic", Float, nullable=False),
)

clock_jump = Table(
    "clock_jump",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("detected_at", UtcDateTime, nullable=False, index=True),  # after the jump
    Column("seconds", Float, nullable=False),  # positive: forward
    Column("boot_id", String(64), nullable=False),
    Column("timers_moved", Integer, nullable=False),
    Column("alerts_held_until", UtcDateTime, nullable=False),
)

RECENT = timedelta(days=1)  # jumps shown on the dashboard and applied to incoming stamps


@dataclass(frozen=True)
class Jump:
    detected_at: datetime
    seconds: float
    timers_moved: int
    alerts_held_until: datetime


# The timers: (table, its key, the columns moved, which rows)
_TIMERS: tuple[tuple[Table, Column[Any], tuple[str, ...], Any], ...] = (
    (
        delivery,
        delivery.c.id,
        ("next_attempt_at", "attempt_expires_at", "confirm_by", "resend_at"),
        delivery.c.state.in_([s.value for s in UNFINISHED]),
    ),
    (
        destination_circuit,
        destination_circuit.c.destination,
        ("probe_at", "opened_at"),
        destination_circuit.c.opened_at.is_not(None),
    ),
    (
        notification,
        notification.c.id,
        ("next_attempt_at",),
        notification.c.state == "pending",  # NotificationState.PENDING
    ),
    (clock_jump, clock_jump.c.id, ("alerts_held_until",), None),
)


async def check(session: AsyncSession, reading: Reading, *, hold: timedelta) -> Jump | None:
    """Compare ``reading`` with this boot's anchor and move the anchor to it; on a jump, move
    the timers and hold alerts (returns the jump)."""
    boot = boot_id()
    # one router at a time: two replicas starting together both found no anchor and both
    # inserted it (a unique violation that ended one router's ticks)
    await serialize(session, f"clock-anchor:{boot}")
    anchor = (
        await session.execute(
            select(clock_anchor.c.wall, clock_anchor.c.monotonic)
            .where(clock_anchor.c.boot_id == boot)
            .with_for_update()
        )
    ).one_or_none()
    if anchor is None:
        await session.execute(
            insert(clock_anchor).values(
                boot_id=boot, wall=reading.wall, monotonic=reading.monotonic
            )
        )
        return None
    if reading.monotonic < anchor.monotonic:  # a reading older than the anchor: no news
        return None
    seconds = jumped(Reading(anchor.wall, anchor.monotonic), reading)
    await session.execute(
        update(clock_anchor)
        .where(clock_anchor.c.boot_id == boot)
        .values(wall=reading.wall, monotonic=reading.monotonic)
    )
    if not seconds:
        return None
    moved = await move_timers(session, timedelta(seconds=seconds))
    jump = Jump(reading.wall, seconds, moved, reading.wall + hold)
    await session.execute(
        insert(clock_jump).values(
            detected_at=jump.detected_at,
            seconds=seconds,
            boot_id=boot,
            timers_moved=moved,
            alerts_held_until=jump.alerts_held_until,
        )
    )
    log.warning(
        "wall clock jumped: timers moved with it, new alerts held",
        extra={"seconds": round(seconds, 1), "timers": moved, "hold_s": hold.total_seconds()},
    )
    return jump


async def move_timers(session: AsyncSession, by: timedelta) -> int:
    """Move every pending timer by ``by``; returns how many rows moved."""
    moved = 0
    for table, key, columns, which in _TIMERS:
        query = select(key, *(table.c[c] for c in columns))
        if which is not None:
            query = query.where(which)
        rows = (await session.execute(query)).all()
        if not rows:
            continue
        params = [
            {"b_key": row[0]}
            | {
                f"b_{c}": None if v is None else v + by
                for c, v in zip(columns, row[1:], strict=True)
            }
            for row in rows
        ]
        await session.execute(
            update(table)
            .where(key == bindparam("b_key"))
            .values({c: bindparam(f"b_{c}") for c in columns}),
            params,
        )
        moved += len(rows)
    return moved


async def alerts_held(session: AsyncSession, now: datetime) -> bool:
    """Whether a recent jump still holds new alerts."""
    found = await session.execute(
        select(clock_jump.c.id).where(clock_jump.c.alerts_held_until > now).limit(1)
    )
    return found.first() is not None


async def recent(session: AsyncSession, now: datetime) -> list[Jump]:
    """The jumps of the last day, in the order they were detected (not by ``detected_at``:
    after a jump back, the next jump's detection time can be the earlier one)."""
    rows = await session.execute(
        select(clock_jump).where(clock_jump.c.detected_at > now - RECENT).order_by(clock_jump.c.id)
    )
    return [Jump(r.detected_at, r.seconds, r.timers_moved, r.alerts_held_until) for r in rows.all()]


def on_our_scale(stamp: datetime, now: datetime, jumps: Sequence[Jump]) -> datetime:
    """Another process's timestamp as the router's clock would have read it: moved past
    each forward jump it was made before (made on the old scale, it lies more than the jump
    before the jump's detection), and never later than ``now`` (a stamp from a clock that
    was ahead, or has since gone back). ``jumps`` in the order detected."""
    for jump in jumps:
        if jump.seconds > 0 and stamp < jump.detected_at - timedelta(seconds=jump.seconds):
            stamp += timedelta(seconds=jump.seconds)
    return min(stamp, now)
