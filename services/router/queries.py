"""Read models for the ops API: metadata only, never payloads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.circuit import CircuitState, destination_circuit
from services.router.domain import UNFINISHED, DeliveryState
from services.router.tables import (
    alert,
    delivery,
    delivery_attempt,
    delivery_transition,
    message,
)

_DELIVERY_FIELDS = (
    delivery.c.id,
    delivery.c.destination,
    delivery.c.state,
    delivery.c.attempts,
    delivery.c.confirm_by,
    delivery.c.sent_at,
    delivery.c.confirmed_at,
    delivery.c.last_error,
    delivery.c.message_id,
    delivery.c.legal_due_at,
)


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _row(row: Any) -> dict[str, Any]:
    return {k: _iso(v) for k, v in row._mapping.items()}


async def list_messages(
    session: AsyncSession, *, limit: int, state: str | None = None, event_code: str | None = None
) -> list[dict[str, Any]]:
    query = select(
        message.c.id,
        message.c.event_code,
        message.c.source,
        message.c.pseudonym,
        message.c.business_key,
        message.c.sent_at,
        message.c.received_at,
        message.c.version,
        message.c.superseded_by,
    )
    if state is not None:
        query = query.where(
            message.c.id.in_(select(delivery.c.message_id).where(delivery.c.state == state))
        )
    if event_code is not None:
        query = query.where(message.c.event_code == event_code)
    rows = (await session.execute(query.order_by(message.c.received_at.desc()).limit(limit))).all()
    out = [_row(r) for r in rows]
    ids = [m["id"] for m in out]
    deliveries = (
        await session.execute(select(*_DELIVERY_FIELDS).where(delivery.c.message_id.in_(ids)))
    ).all()
    by_message: dict[str, list[dict[str, Any]]] = {}
    for d in deliveries:
        by_message.setdefault(d.message_id, []).append(_row(d))
    for m in out:
        m["deliveries"] = by_message.get(m["id"], [])
    return out


async def message_detail(session: AsyncSession, message_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(
                message.c.id,
                message.c.event_code,
                message.c.source,
                message.c.pseudonym,
                message.c.business_key,
                message.c.sent_at,
                message.c.received_at,
                message.c.version,
                message.c.superseded_by,
            ).where(message.c.id == message_id)
        )
    ).first()
    if row is None:
        return None
    detail = _row(row)
    detail["deliveries"] = []
    for d in (
        await session.execute(
            select(*_DELIVERY_FIELDS)
            .where(delivery.c.message_id == message_id)
            .order_by(delivery.c.id)
        )
    ).all():
        item = _row(d)
        item["attempts_log"] = [
            _row(a)
            for a in (
                await session.execute(
                    select(
                        delivery_attempt.c.attempt_no,
                        delivery_attempt.c.dispatched_at,
                        delivery_attempt.c.completed_at,
                        delivery_attempt.c.outcome,
                        delivery_attempt.c.detail,
                    )
                    .where(delivery_attempt.c.delivery_id == d.id)
                    .order_by(delivery_attempt.c.attempt_no)
                )
            ).all()
        ]
        item["transitions"] = [
            _row(t)
            for t in (
                await session.execute(
                    select(
                        delivery_transition.c.from_state,
                        delivery_transition.c.to_state,
                        delivery_transition.c.at,
                        delivery_transition.c.reason,
                    )
                    .where(delivery_transition.c.delivery_id == d.id)
                    .order_by(delivery_transition.c.id)
                )
            ).all()
        ]
        detail["deliveries"].append(item)
    return detail


async def list_alerts(session: AsyncSession, *, state: str | None) -> list[dict[str, Any]]:
    query = select(alert)
    if state is not None:
        query = query.where(alert.c.state == state)
    return [_row(r) for r in (await session.execute(query.order_by(alert.c.id.desc()))).all()]


async def state_counts(session: AsyncSession) -> dict[str, int]:
    rows = (
        await session.execute(
            select(delivery.c.state, func.count().label("n")).group_by(delivery.c.state)
        )
    ).all()
    return {str(row.state): int(row.n) for row in rows}


async def destination_health(session: AsyncSession) -> list[dict[str, Any]]:
    """Per destination: its circuit, how many deliveries are unfinished in each state, and
    since when the oldest unconfirmed one has waited."""
    unfinished = [s.value for s in UNFINISHED] + [DeliveryState.DEAD_LETTER.value]
    counts = (
        await session.execute(
            select(
                delivery.c.destination,
                delivery.c.state,
                func.count().label("n"),
                func.min(delivery.c.created_at).label("oldest"),
            )
            .where(delivery.c.state.in_(unfinished))
            .group_by(delivery.c.destination, delivery.c.state)
        )
    ).all()
    circuits = {
        r.destination: r for r in (await session.execute(select(destination_circuit))).all()
    }
    found: dict[str, dict[str, Any]] = {}
    for name in sorted({r.destination for r in counts} | set(circuits)):
        c = circuits.get(name)
        found[name] = {
            "destination": name,
            "circuit": c.state if c else CircuitState.CLOSED.value,
            "failuresInARow": c.failures if c else 0,
            "probeAt": _iso(c.probe_at) if c and c.probe_at else None,
            "states": {},
            "oldestUnconfirmedSince": None,
        }
    for r in counts:
        item = found[r.destination]
        item["states"][r.state] = int(r.n)
        if r.state != DeliveryState.DEAD_LETTER.value:
            oldest = item["oldestUnconfirmedSince"]
            since = _iso(r.oldest)
            item["oldestUnconfirmedSince"] = since if oldest is None else min(oldest, since)
    return list(found.values())


async def alert_detail(session: AsyncSession, alert_id: int) -> dict[str, Any] | None:
    row = (await session.execute(select(alert).where(alert.c.id == alert_id))).first()
    return _row(row) if row is not None else None
