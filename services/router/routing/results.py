"""A Kafka batch's results (outcomes and receipts), applied set-based.

Most results are an adapter's ok and the journal's receipt, and each needs only this:
complete the attempt, tell the circuit the destination answers, and move the delivery to
``sent`` or ``confirmed``. Those are collected and written at the end with one statement
per table (:class:`Moves`), from the deliveries read once for the whole batch and locked
(PostgreSQL; SQLite's writer holds its lock), so nothing can change them meanwhile.
Everything else (a failure, a refusal, an outcome for an unknown delivery) goes through
:func:`services.router.routing.deliveries.apply_result` one by one as before, after what
was collected so far is written, so that it sees the deliveries as they are.

Confirmations are announced as :class:`~services.router.domain_events.DeliveriesConfirmed`
(deviations closes what it counted for them)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging import topics
from services.messaging.envelope import Envelope, EventCode, ResponseCode
from services.messaging.kafka import IncomingRecord, OutgoingRecord
from services.messaging.outbox import add_many_to_outbox
from services.router import domain_events
from services.router.routing import circuit
from services.router.routing.deliveries import (
    OUTBOX_OWNER,
    PUBLISHED_STATES,
    DeliveryChangedUnderfoot,
    RoutingRules,
    apply_result,
    delivery_event,
    delivery_rows,
    keep_late_evidence,
    log_ids,
    receipt_evidence,
    transition_row,
)
from services.router.routing.domain import DeliveryState, check_delivery_transition
from services.router.routing.rows import DeliveryRow
from services.router.routing.tables import delivery, delivery_attempt, delivery_transition

log = logging.getLogger(__name__)

_UNCONFIRMED = (DeliveryState.PENDING, DeliveryState.DISPATCHED, DeliveryState.SENT)


@dataclass(frozen=True, slots=True)
class Result:
    """A result record of a batch: its envelope and its record."""

    env: Envelope
    record: IncomingRecord


@dataclass
class _Move:
    row: DeliveryRow
    origin: DeliveryState  # the state in the database
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Moves:
    """The batch's state changes, written by :meth:`flush`: per delivery one UPDATE from
    the state it had to the last one it reached (grouped into one statement per shape),
    every transition and public event in the order they happened, every completed attempt."""

    _moves: dict[int, _Move] = field(default_factory=dict)
    _transitions: list[dict[str, Any]] = field(default_factory=list)
    _events: list[OutgoingRecord] = field(default_factory=list)
    _attempts: list[dict[str, Any]] = field(default_factory=list)
    _confirmed: list[int] = field(default_factory=list)

    def complete_attempt(
        self, row: DeliveryRow, attempt_no: int, outcome: str, detail: str | None
    ) -> None:
        self._attempts.append(
            {"row_id": row.id, "attempt": attempt_no, "outcome": outcome, "detail": detail}
        )

    def move(
        self,
        row: DeliveryRow,
        target: DeliveryState,
        *,
        now: datetime,
        reason: str,
        **values: Any,
    ) -> None:
        current = DeliveryState(row.state)
        check_delivery_transition(current, target)
        if target is DeliveryState.CONFIRMED:
            values["legal_check_at"] = None  # delivered in law's sense: no more deadline checks
            self._confirmed.append(row.id)
        pending = self._moves.setdefault(row.id, _Move(row, current))
        pending.values |= {"updated_at": now, **values}
        row.state = target.value
        self._transitions.append(transition_row(row.id, current, target, now, reason))
        if target in PUBLISHED_STATES:
            self._events.append(delivery_event(row, target, now))

    async def flush(self, session: AsyncSession, now: datetime) -> None:
        attempts, self._attempts = self._attempts, []
        moves, self._moves = list(self._moves.values()), {}
        transitions, self._transitions = self._transitions, []
        events, self._events = self._events, []
        confirmed, self._confirmed = self._confirmed, []
        if attempts:
            await session.execute(
                update(delivery_attempt)
                .where(
                    delivery_attempt.c.delivery_id == bindparam("row_id"),
                    delivery_attempt.c.attempt_no == bindparam("attempt"),
                    delivery_attempt.c.outcome.is_(None),
                )
                .values(completed_at=now, outcome=bindparam("outcome"), detail=bindparam("detail")),
                attempts,
            )
        await _update_deliveries(session, moves)
        if transitions:
            await session.execute(delivery_transition.insert(), transitions)
        await add_many_to_outbox(session, OUTBOX_OWNER, events)
        if confirmed:
            await domain_events.emit(
                session, domain_events.DeliveriesConfirmed(tuple(confirmed), at=now)
            )


async def _update_deliveries(session: AsyncSession, moves: Sequence[_Move]) -> None:
    """One executemany per (from, to, columns): rows of one shape."""
    shapes: dict[tuple[str, str, tuple[str, ...]], list[_Move]] = {}
    for m in moves:
        shapes.setdefault((m.origin.value, m.row.state, tuple(sorted(m.values))), []).append(m)
    for (origin, target, columns), group in shapes.items():
        result = await session.execute(
            update(delivery)
            .where(delivery.c.id == bindparam("row_id"), delivery.c.state == origin)
            .values(state=target, **{c: bindparam(f"v_{c}") for c in columns}),
            [{"row_id": m.row.id, **{f"v_{c}": m.values[c] for c in columns}} for m in group],
        )
        changed = result.rowcount  # type: ignore[attr-defined]
        if session.get_bind().dialect.supports_sane_multi_rowcount and changed != len(group):
            # locked when read: this cannot happen; if it does, the batch is read again
            raise DeliveryChangedUnderfoot(f"{len(group) - changed} deliveries")


async def apply_results(
    session: AsyncSession, results: Sequence[Result], rules: RoutingRules, now: datetime
) -> set[str]:
    """Apply a batch's results in order; return the patients (pseudonyms) whose next
    delivery one of them may release."""
    rows = await _load(session, [r.env for r in results])
    open_attempts = await _open_attempts(session, [row.id for row in rows.values()])
    moves = Moves()
    released: set[str] = set()
    answering: set[str] = set()  # destinations whose circuit was told they answer
    for result in results:
        env, record = result.env, result.record
        row = rows.get((str(env.response_to), env.source_system))
        fast = (
            row is not None
            and env.response_code is ResponseCode.OK
            and (record.signer is None or record.signer == topics.DELIVERED_BY.get(row.destination))
            and env.event_code in (EventCode.DELIVERY_OUTCOME.value, EventCode.RECEIPT.value)
        )
        if not fast or row is None:
            await moves.flush(session, now)  # what it reads must be as it is now
            answering.clear()
            patient = await apply_result(session, env, record, rules, now)
            if row is not None:
                rows.pop((row.message_id, row.destination), None)  # read again if asked
                open_attempts = {a for a in open_attempts if a[0] != row.id}
            if patient is not None:
                released.add(patient)
            continue
        if env.event_code == EventCode.DELIVERY_OUTCOME.value:
            attempt_text = record.headers.get("attempt", "")
            attempt_no = int(attempt_text) if attempt_text.isdigit() else row.attempts
            if (row.id, attempt_no) not in open_attempts:
                log.info("outcome already recorded", extra={**log_ids(row), "attempt": attempt_no})
                released.add(row.pseudonym)
                continue
            open_attempts.discard((row.id, attempt_no))
            moves.complete_attempt(row, attempt_no, ResponseCode.OK.value, env.outcome_text)
            if row.destination not in answering:  # once a batch, until a failure is recorded
                await circuit.record_success(session, row.destination, now)
                answering.add(row.destination)
            if DeliveryState(row.state) in (DeliveryState.PENDING, DeliveryState.DISPATCHED):
                moves.move(
                    row,
                    DeliveryState.SENT,
                    now=now,
                    reason=f"accepted by destination (attempt {attempt_no})",
                    sent_at=now,
                    attempt_expires_at=None,
                )
        else:  # an ok receipt: it may overtake the adapter's ok, and proves delivery either way
            state = DeliveryState(row.state)
            if state not in _UNCONFIRMED:
                log.info("receipt without effect", extra={**log_ids(row), "state": state.value})
                if env.evidence:
                    await moves.flush(session, now)  # the confirmation this batch made first
                    await keep_late_evidence(session, row.id, env)
            else:
                values: dict[str, Any] = {"confirmed_at": now, "attempt_expires_at": None}
                values |= receipt_evidence(env)  # the receiver's record id and time
                if state is not DeliveryState.SENT:
                    values["sent_at"] = now
                moves.move(
                    row,
                    DeliveryState.CONFIRMED,
                    now=now,
                    reason="receipt from destination",
                    **values,
                )
        released.add(row.pseudonym)
    await moves.flush(session, now)
    return released


async def _load(
    session: AsyncSession, envs: Sequence[Envelope]
) -> dict[tuple[str, str], DeliveryRow]:
    """The deliveries the results answer for, by (message id, destination), locked:
    replicas' expiring attempts and dispatches wait for this batch (PostgreSQL)."""
    ids = sorted({str(env.response_to) for env in envs if env.response_to})
    if not ids:
        return {}
    found = await session.execute(
        delivery_rows().where(delivery.c.message_id.in_(ids)).with_for_update(of=delivery)
    )
    return {(r.message_id, r.destination): DeliveryRow.of(r) for r in found}


async def _open_attempts(session: AsyncSession, delivery_ids: list[int]) -> set[tuple[int, int]]:
    """(delivery id, attempt number) of the attempts with no outcome yet."""
    if not delivery_ids:
        return set()
    found = await session.execute(
        select(delivery_attempt.c.delivery_id, delivery_attempt.c.attempt_no).where(
            delivery_attempt.c.delivery_id.in_(sorted(delivery_ids)),
            delivery_attempt.c.outcome.is_(None),
        )
    )
    return {(int(r.delivery_id), int(r.attempt_no)) for r in found}
