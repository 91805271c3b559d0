"""Time-driven router work: expire attempts nobody answered, and raise the alert when a
delivery is not confirmed by its family's confirmation deadline (the silent drop)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.payload_crypto import Keyring
from services.router import domain_events
from services.router.alerting.events import Severity
from services.router.alerting.incidents import Affected, AlertSink
from services.router.routing import circuit
from services.router.routing.circuit import destination_circuit
from services.router.routing.deadlines import Stage, next_stage_at
from services.router.routing.deadlines import stage as deadline_stage
from services.router.routing.deliveries import (
    RoutingRules,
    delivery_rows,
    move,
    resend_interval,
    retry_or_dead_letter,
)
from services.router.routing.domain import UNFINISHED, AlertKind, DeliveryState
from services.router.routing.tables import delivery, delivery_attempt, message

log = logging.getLogger(__name__)


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest moment one of the watchdog's timers falls due (an attempt's timeout, a
    confirmation deadline or re-send, a circuit's probe), or None: the tick sleeps until
    then instead of polling. Each minimum is read along an index or over few rows."""
    d, c = delivery.c, destination_circuit.c
    earliest = (
        select(func.min(d.attempt_expires_at))
        .where(d.state == DeliveryState.DISPATCHED.value)
        .scalar_subquery(),
        select(func.min(d.confirm_by))
        .where(d.state == DeliveryState.SENT.value, d.resend_at.is_(None))
        .scalar_subquery(),
        select(func.min(d.resend_at))
        .where(d.state == DeliveryState.SENT.value, d.resend_at.is_not(None))
        .scalar_subquery(),
        select(func.min(c.probe_at)).where(c.probe_at.is_not(None)).scalar_subquery(),
    )
    row = (await session.execute(select(*earliest))).one()
    found: list[datetime] = [t for t in row if t is not None]
    return min(found) if found else None


async def expire_attempts(
    session: AsyncSession, rules: RoutingRules, now: datetime, *, limit: int = 200
) -> int:
    """Dispatched deliveries whose adapter never answered in time are retried; an unanswered
    attempt counts against the destination's circuit."""
    return await _retry_in_flight(
        session,
        rules,
        now,
        due=delivery.c.attempt_expires_at <= now,
        outcome="timeout",
        detail="no outcome from the adapter in time",
        reason="attempt timed out",
        limit=limit,
        counts_as_failure=True,
    )


async def sweep_in_flight(session: AsyncSession, rules: RoutingRules, now: datetime) -> int:
    """At start-up, every delivery this router left ``dispatched`` is retried at once instead
    of after its attempt timeout: its command may have been lost with the process or the
    broker. A duplicate is harmless (the destination dedupes on the message id). What other
    routers have in flight is theirs; if one of them died, its attempts simply time out."""
    swept = 0
    mine = or_(delivery.c.dispatched_by == rules.instance, delivery.c.dispatched_by.is_(None))
    while True:
        found = await _retry_in_flight(
            session,
            rules,
            now,
            due=mine,
            outcome="swept",
            detail="in flight when the router stopped",
            reason="swept at start-up",
            limit=500,
        )
        swept += found
        if found < 500:
            return swept


async def _retry_in_flight(
    session: AsyncSession,
    rules: RoutingRules,
    now: datetime,
    *,
    due: ColumnElement[bool],
    outcome: str,
    detail: str,
    reason: str,
    limit: int,
    counts_as_failure: bool = False,
) -> int:
    rows = (
        await session.execute(
            delivery_rows()
            .where(delivery.c.state == DeliveryState.DISPATCHED.value, due)
            .order_by(delivery.c.id)
            .limit(limit)
            .with_for_update(of=delivery, skip_locked=True)
        )
    ).all()
    for row in rows:
        await session.execute(
            update(delivery_attempt)
            .where(
                delivery_attempt.c.delivery_id == row.id,
                delivery_attempt.c.attempt_no == row.attempts,
                delivery_attempt.c.outcome.is_(None),
            )
            .values(completed_at=now, outcome=outcome, detail=detail)
        )
        if counts_as_failure:
            await circuit.record_failure(session, row.destination, rules.circuit, now)
        await retry_or_dead_letter(session, row, rules, now, reason=reason)
    return len(rows)


async def flag_overdue_confirmations(
    session: AsyncSession,
    now: datetime,
    keyring: Keyring,
    *,
    sinks: Sequence[AlertSink] = (),
    limit: int = 500,
) -> int:
    """Raise (or extend) the confirmation-overdue alert for each newly overdue delivery."""
    rows = (
        await session.execute(
            delivery_rows()
            .where(
                delivery.c.state.in_([s.value for s in UNFINISHED]),
                delivery.c.confirm_by <= now,
                delivery.c.overdue_alerted_at.is_(None),
            )
            .order_by(delivery.c.id)
            .limit(limit)
            .with_for_update(of=delivery, skip_locked=True)
        )
    ).all()
    for row in rows:
        flagged = await session.execute(
            update(delivery)
            .where(delivery.c.id == row.id, delivery.c.overdue_alerted_at.is_(None))
            .values(overdue_alerted_at=now)
        )
        if flagged.rowcount == 0:  # type: ignore[attr-defined]
            continue
        await domain_events.emit(
            session,
            domain_events.IncidentFound(
                kind=AlertKind.CONFIRMATION_OVERDUE,
                destination=row.destination,
                event_code=row.event_code,
                affected=Affected.of(row, keyring),
                now=now,
                severity=Severity.CRITICAL,
                sinks=sinks,
            ),
        )
    return len(rows)


_STAGE_SEVERITY = {
    Stage.HALF: Severity.INFO,
    Stage.LATE: Severity.WARNING,
    Stage.BREACHED: Severity.CRITICAL,
}


async def check_legal_deadlines(
    session: AsyncSession,
    now: datetime,
    keyring: Keyring,
    *,
    sinks: Sequence[AlertSink] = (),
    limit: int = 500,
) -> int:
    """Warn at 50 % and 80 % of the time to an unconfirmed delivery's legal deadline and
    escalate at the breach: one deadline incident per destination and family, whose events
    name the patient by pseudonym and the sending unit."""
    rows = (
        await session.execute(
            delivery_rows()
            .add_columns(
                delivery.c.legal_from,
                delivery.c.legal_due_at,
                delivery.c.legal_stage,
            )
            .where(
                delivery.c.legal_check_at <= now,
                delivery.c.state.in_([s.value for s in (*UNFINISHED, DeliveryState.DEAD_LETTER)]),
            )
            .order_by(delivery.c.legal_check_at)
            .limit(limit)
            .with_for_update(of=delivery, skip_locked=True)
        )
    ).all()
    for row in rows:
        reached = deadline_stage(row.legal_from, row.legal_due_at, now)
        await session.execute(
            update(delivery)
            .where(delivery.c.id == row.id)
            .values(
                legal_stage=int(reached),
                legal_check_at=next_stage_at(row.legal_from, row.legal_due_at, reached),
            )
        )
        if reached <= row.legal_stage:
            continue
        await domain_events.emit(
            session,
            domain_events.IncidentFound(
                kind=AlertKind.DEADLINE_AT_RISK,
                destination=row.destination,
                event_code=row.event_code,
                affected=Affected.of(row, keyring, due_at=row.legal_due_at),
                now=now,
                severity=_STAGE_SEVERITY[reached],
                sinks=sinks,
            ),
        )
    return len(rows)


async def resend_unconfirmed(
    session: AsyncSession, rules: RoutingRules, now: datetime, *, limit: int = 200
) -> int:
    """A delivery the receiver accepted but never confirmed may have been dropped silently
    (the Gotland admission trigger): at its confirmation deadline, and again every
    deadline-length after, it is sent again with the same message id, for as long as it
    stays unconfirmed: until its receipt comes or an operator closes it with a reason
    (:func:`services.router.routing.replay.close`). A receiver that has it dedupes; one that dropped
    it (overnight, say, and repaired in the morning) stores it now, and its receipt
    confirms the delivery.

    Each re-send opens a new round with a fresh attempt budget (``attempts_at_replay``
    marks where the round began): the budget limits the attempts of one outage, never the
    life of a notice, and a re-send is no longer stopped by the message's age.

    A patient's order holds across re-sends: only the patient's earliest unconfirmed
    delivery to a destination is re-sent on its own clock, and it takes the patient's later
    unconfirmed ones to that destination along, each held behind the one before it as
    dispatch holds them. A later one re-sent alone could be stored before an earlier one
    the receiver had dropped too."""
    due = func.coalesce(delivery.c.resend_at, delivery.c.confirm_by)
    earlier, earlier_msg = delivery.alias("earlier"), message.alias("earlier_msg")
    first_unconfirmed = ~exists().where(
        earlier.c.destination == delivery.c.destination,
        earlier.c.id < delivery.c.id,
        earlier.c.state.in_([s.value for s in UNFINISHED]),
        earlier_msg.c.id == earlier.c.message_id,
        earlier_msg.c.pseudonym == message.c.pseudonym,
    )
    rows = (
        await session.execute(
            delivery_rows()
            .where(delivery.c.state == DeliveryState.SENT.value, due <= now, first_unconfirmed)
            .order_by(delivery.c.id)
            .limit(limit)
            .with_for_update(of=delivery, skip_locked=True)
        )
    ).all()
    for row in rows:
        await _send_again(session, row, now, "sent again: no receipt by the confirmation deadline")
        if row.pseudonym is None:
            continue
        later = (
            await session.execute(
                delivery_rows()
                .where(
                    message.c.pseudonym == row.pseudonym,
                    delivery.c.destination == row.destination,
                    delivery.c.id > row.id,
                    delivery.c.state == DeliveryState.SENT.value,
                )
                .order_by(delivery.c.id)
                .with_for_update(of=delivery, skip_locked=True)
            )
        ).all()
        for follower in later:
            await _send_again(
                session,
                follower,
                now,
                f"sent again after the patient's earlier unconfirmed {row.message_id}, in order",
            )
    return len(rows)


async def _send_again(session: AsyncSession, row: Any, now: datetime, reason: str) -> None:
    await move(
        session,
        row,
        DeliveryState.PENDING,
        now=now,
        reason=reason[:200],
        next_attempt_at=now,
        resend_at=now + resend_interval(row),
        attempts_at_replay=row.attempts,
    )
