"""Replay of dead-lettered deliveries, by message id or by filter, audited and version-aware.

A replayed delivery goes back to ``pending`` with a fresh attempt budget, keeps its place in
the patient's order, and every request is written to ``replay_audit``, granted or refused.
A superseded SIP or medication list (a newer version of the same document exists) is not
resurrected unless the operator forces it: applying an old list over a new one is exactly the
medication error the broker exists to prevent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.deliveries import delivery_rows, move
from services.router.domain import DeliveryState
from services.router.retention import pruned_at
from services.router.tables import delivery, message, replay_audit

MAX_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    message_ids: tuple[str, ...] = ()
    destination: str | None = None
    event_code: str | None = None
    since: datetime | None = None  # dead-lettered at or after
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    delivery_id: int
    message_id: str
    destination: str
    replayed: bool
    detail: str


async def replay(
    session: AsyncSession,
    wanted: ReplayFilter,
    *,
    actor: str,
    reason: str,
    force: bool,
    now: datetime,
) -> list[ReplayOutcome]:
    query = _dead_letters(delivery_rows(), wanted)
    rows = (await session.execute(query.order_by(delivery.c.id).limit(MAX_PER_REQUEST))).all()
    outcomes = []
    for row in rows:
        newer = await _newer_version(session, row.message_id)
        if pruned_at(row.payload) is not None:  # nothing left to send, forced or not
            outcome = ReplayOutcome(
                row.id, row.message_id, row.destination, False, "payload pruned (retention)"
            )
        elif newer is not None and not force:
            outcome = ReplayOutcome(
                row.id, row.message_id, row.destination, False, f"superseded by {newer}"
            )
        else:
            await move(
                session,
                row,
                DeliveryState.PENDING,
                now=now,
                reason=f"replayed by {actor}{' (forced)' if force else ''}: {reason}"[:200],
                next_attempt_at=now,
                attempts_at_replay=row.attempts,
            )
            outcome = ReplayOutcome(row.id, row.message_id, row.destination, True, "replayed")
        await session.execute(
            replay_audit.insert().values(
                at=now,
                actor=actor[:100],
                reason=reason[:500],
                delivery_id=row.id,
                message_id=row.message_id,
                forced=force,
                outcome=outcome.detail[:200],
            )
        )
        outcomes.append(outcome)
    return outcomes


async def count_dead_letters(session: AsyncSession, wanted: ReplayFilter) -> int:
    """How many dead-lettered deliveries ``wanted`` names now: what a replay by this filter
    would go through (the CLI's progress bar needs the total before the first page)."""
    query = select(func.count()).select_from(
        delivery.join(message, message.c.id == delivery.c.message_id)
    )
    return int(await session.scalar(_dead_letters(query, wanted)) or 0)


def _dead_letters(query: Any, wanted: ReplayFilter) -> Any:
    query = query.where(delivery.c.state == DeliveryState.DEAD_LETTER.value)
    if wanted.message_ids:
        query = query.where(delivery.c.message_id.in_(wanted.message_ids))
    if wanted.destination:
        query = query.where(delivery.c.destination == wanted.destination)
    if wanted.event_code:
        query = query.where(message.c.event_code == wanted.event_code)
    if wanted.since:
        query = query.where(delivery.c.updated_at >= wanted.since)
    if wanted.until:
        query = query.where(delivery.c.updated_at <= wanted.until)
    return query


async def _newer_version(session: AsyncSession, message_id: str) -> str | None:
    """The id of a newer version of the same document, if the message is versioned."""
    row: Any = (
        await session.execute(
            select(message.c.stream, message.c.version, message.c.superseded_by).where(
                message.c.id == message_id
            )
        )
    ).first()
    if row is None or row.stream is None:
        return None
    if row.superseded_by:
        return str(row.superseded_by)
    newer = await session.scalar(
        select(message.c.id)
        .where(message.c.stream == row.stream, message.c.version > row.version)
        .order_by(message.c.version.desc())
        .limit(1)
    )
    return None if newer is None else str(newer)


async def audit_log(session: AsyncSession, *, limit: int) -> list[dict[str, Any]]:
    rows = (
        await session.execute(select(replay_audit).order_by(replay_audit.c.id.desc()).limit(limit))
    ).all()
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
        for r in rows
    ]
