"""Replay of unconfirmed deliveries, by message id or by filter, audited and version-aware;
and closing one by hand, which is the only way an unconfirmed delivery stops being sent.

Any delivery without a receipt can be replayed: a dead letter, one sent but never confirmed
(a receiver that dropped it silently), or one waiting for its next attempt. A replayed
delivery goes back to ``pending`` with a fresh attempt budget, due at once, keeps its place
in the patient's order, and every request is written to ``replay_audit``, granted or
refused. One whose attempt is in flight is refused: its outcome is on its way.
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

from services.router.audit.retention import pruned_at
from services.router.routing.deliveries import delivery_rows, move, resend_interval
from services.router.routing.domain import DeliveryState
from services.router.routing.tables import delivery, message, replay_audit

MAX_PER_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    message_ids: tuple[str, ...] = ()
    destination: str | None = None
    event_code: str | None = None
    since: datetime | None = None  # in its current state since (at or after)
    until: datetime | None = None


# what a replay takes: everything unconfirmed but an attempt in flight
REPLAYABLE = (DeliveryState.DEAD_LETTER, DeliveryState.SENT, DeliveryState.PENDING)
# what an operator may close: what the broker would otherwise go on sending
CLOSABLE = (DeliveryState.SENT, DeliveryState.PENDING)


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
    query = _candidates(delivery_rows(), wanted, REPLAYABLE)
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
                # still unconfirmed after this: sent again a whole interval later, not at once
                resend_at=now + resend_interval(row),
            )
            outcome = ReplayOutcome(row.id, row.message_id, row.destination, True, "replayed")
        await _audit(
            session, row, actor=actor, reason=reason, forced=force, outcome=outcome.detail, at=now
        )
        outcomes.append(outcome)
    return outcomes


async def count_candidates(session: AsyncSession, wanted: ReplayFilter) -> dict[str, int]:
    """How many deliveries ``wanted`` names now, per state: what a replay by this filter
    would go through (the CLI's progress bar needs the total before the first page)."""
    query = (
        select(delivery.c.state, func.count().label("n"))
        .select_from(delivery.join(message, message.c.id == delivery.c.message_id))
        .group_by(delivery.c.state)
    )
    rows = (await session.execute(_candidates(query, wanted, REPLAYABLE))).all()
    found = {str(r.state): int(r.n) for r in rows}
    return {state.value: found.get(state.value, 0) for state in REPLAYABLE}


class NotClosable(Exception):
    """The delivery is confirmed, already closed, or its attempt is in flight."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


async def close(
    session: AsyncSession,
    message_id: str,
    destination: str,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> bool:
    """An operator decides an unconfirmed delivery is not to be sent again (the receiver
    has it by other means, say, or the stay was registered in error): it is dead-lettered
    with the operator's reason, no incident is raised for it, and it can still be replayed.
    Audited in ``replay_audit``. False when there is no such delivery."""
    row = (
        await session.execute(
            delivery_rows()
            .where(delivery.c.message_id == message_id, delivery.c.destination == destination)
            .with_for_update(of=delivery)
        )
    ).first()
    if row is None:
        return False
    if DeliveryState(row.state) not in CLOSABLE:
        raise NotClosable(row.state)
    await move(
        session,
        row,
        DeliveryState.DEAD_LETTER,
        now=now,
        reason=f"closed by {actor}: {reason}"[:200],
        next_attempt_at=None,
        resend_at=None,
        last_error=f"closed by an operator: {reason}"[:500],
    )
    await _audit(session, row, actor=actor, reason=reason, forced=False, outcome="closed", at=now)
    return True


async def _audit(
    session: AsyncSession,
    row: Any,
    *,
    actor: str,
    reason: str,
    forced: bool,
    outcome: str,
    at: datetime,
) -> None:
    """One operator action on a delivery (a replay granted or refused, a close)."""
    await session.execute(
        replay_audit.insert().values(
            at=at,
            actor=actor[:100],
            reason=reason[:500],
            delivery_id=row.id,
            message_id=row.message_id,
            forced=forced,
            outcome=outcome[:200],
        )
    )


def _candidates(query: Any, wanted: ReplayFilter, states: tuple[DeliveryState, ...]) -> Any:
    query = query.where(
        delivery.c.state.in_([s.value for s in states]),
        # a pending delivery never tried yet is simply queued: nothing to replay
        (delivery.c.state != DeliveryState.PENDING.value) | (delivery.c.attempts > 0),
    )
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
